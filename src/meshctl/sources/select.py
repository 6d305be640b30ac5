"""Which source serve reads, as its flags choose: a directory, a cluster, or both combined."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshctl.config.loader import DEFAULT_NAMESPACE

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient
    from meshctl.sources.base import ConfigSource

__all__ = ["SourceChoice"]


@dataclass(frozen=True, slots=True)
class SourceChoice:
    """A directory (`config_dir`), a cluster (`client`), or both: then Istio config comes from
    the files and the service registry from the cluster. With a cluster and a `mesh_namespace`,
    the mesh config is the `istio` ConfigMap there (`istio-<mesh_revision>` for a revision), as
    istiod reads it from its own namespace."""

    config_dir: str | None
    client: KubeClient | None
    debounce_after: float = 0.1
    debounce_max: float = 10.0
    namespace: str = DEFAULT_NAMESPACE
    mesh_namespace: str = ""
    mesh_revision: str = ""

    @property
    def mesh_configmap(self) -> str:
        """`NAMESPACE/NAME` of the ConfigMap the mesh config is read from; "" when it is not
        read from a cluster."""
        from meshctl.model.meshconfig import mesh_configmap_name

        if self.client is None or not self.mesh_namespace:
            return ""
        return f"{self.mesh_namespace}/{mesh_configmap_name(self.mesh_revision)}"

    def describe(self) -> str:
        cluster = f"the Kubernetes API at {self.client.host}" if self.client is not None else ""
        if self.config_dir and cluster:
            described = f"Istio config from {self.config_dir}, the registry from {cluster}"
        else:
            described = self.config_dir or cluster
        if self.mesh_configmap:
            described += f", the mesh config from ConfigMap {self.mesh_configmap}"
        return described

    def build(self) -> ConfigSource:
        from meshctl.sources.directory import DirectorySource

        directory = None
        if self.config_dir:
            directory = DirectorySource(self.config_dir, debounce_after=self.debounce_after,
                                        debounce_max=self.debounce_max, namespace=self.namespace)
        if self.client is None:
            if directory is None:
                raise ValueError("a source needs a directory, a cluster, or both")
            return directory
        from meshctl.kube.resources import CREDENTIALS, GATEWAY_API, ISTIO, REGISTRY, mesh_configmap
        from meshctl.model.meshconfig import mesh_configmap_name
        from meshctl.sources.kubernetes import KubernetesSource

        watched = (*REGISTRY, *CREDENTIALS) if directory is not None else (*REGISTRY, *CREDENTIALS, *ISTIO,
                                                                           *GATEWAY_API)
        if self.mesh_namespace:
            watched = (*watched, mesh_configmap(self.mesh_namespace, mesh_configmap_name(self.mesh_revision)))
        cluster = KubernetesSource(self.client, watched, debounce_after=self.debounce_after,
                                   debounce_max=self.debounce_max)
        if directory is None:
            return cluster
        from meshctl.sources.combined import CombinedSource

        return CombinedSource(directory, cluster)
