"""Where a command reads proxies from, as the user gave it, resolved to DumpSources.

A proxy is read from exactly one place: a saved admin response (`-f FILE`), an Envoy admin URL
(`--admin`), or pods named by a target (`POD[.NS]`, `deploy/NAME[.NS]`) or selected by `-l`.
proxy-config reads every pod a selector matches; proxy-status compares one proxy, which it
also has to name (its proxy ID) for the control plane.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshctl.errors import MeshctlError, UsageError
from meshctl.inspect.adminpaths import BOOTSTRAP_PATH
from meshctl.inspect.acquire import PROXY_ADMIN_PORT, AdminSource, DumpSource, FileSource
from meshctl.targets import USAGE, Target, parse_target

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["Location"]


@dataclass(frozen=True, slots=True)
class Location:
    """The source flags of a command. `kube` gives the Kubernetes client, and is called only
    when pods have to be found or read, so `-f` and `--admin` work without a kubeconfig (and
    without importing the Kubernetes code at all)."""

    kube: Callable[[], KubeClient]
    target: str | None = None
    file: str | None = None
    admin: str | None = None
    selector: str | None = None
    namespace: str | None = None
    admin_port: int = PROXY_ADMIN_PORT

    def sources(self) -> list[DumpSource]:
        """Every proxy named: one file, one admin URL, one pod, or each pod `-l` selects."""
        if self.target is not None and self.selector is not None:
            raise UsageError("give a pod or -l/--selector, not both")
        given = [self.file is not None, self.admin is not None, self.target is not None or self.selector is not None]
        if sum(given) != 1:
            raise UsageError("give exactly one of: a pod, -l/--selector, -f/--file or --admin")
        if self.file is not None:
            return [FileSource(self.file)]
        if self.admin is not None:
            return [AdminSource(self.admin)]
        from meshctl.inspect.acquire.pod import PodSource
        from meshctl.kube.pods import resolve_pods

        client = self.kube()
        sources: list[DumpSource] = [
            PodSource(client, pod, self.admin_port)
            for pod in resolve_pods(client, self.target, self.selector, self.namespace)
        ]
        if not sources:
            raise MeshctlError("no pods matched")
        return sources

    def proxy(self) -> tuple[str, DumpSource]:
        """The one proxy named: its ID (`POD.NS`, what the control plane knows it by) and where
        its Envoy's dump comes from.

        A pod given with `--file` or `--admin` needs no Kubernetes (its namespace is `.NS`, `-n`
        or `default`); a Deployment, or reading the pod itself, is resolved through the API.
        """
        if self.target is None:
            raise UsageError(f"name the proxy ({USAGE})")
        if self.file is not None and self.admin is not None:
            raise UsageError("give --file or --admin, not both")
        given: DumpSource | None = (
            FileSource(self.file) if self.file is not None else AdminSource(self.admin) if self.admin else None
        )
        target = parse_target(self.target, self.namespace or "default")
        if target.is_pod and given is not None:
            return target.dotted, given
        if given is not None:
            namespace_given = self.namespace is not None or "." in self.target.rpartition("/")[2]
            found = _deployment_pod(target, given, namespace_given)
            if found is not None:
                return found, given
        from meshctl.inspect.acquire.pod import PodSource
        from meshctl.kube.pods import resolve_pods

        client = self.kube()
        (pod,) = resolve_pods(client, self.target, None, self.namespace)
        return str(pod), given or PodSource(client, pod, self.admin_port)


def _deployment_pod(target: Target, source: DumpSource, namespace_given: bool) -> str | None:
    """The proxy ID of the Envoy a dump or admin URL holds, for a `deploy/NAME` target, or None
    when it does not say. Its bootstrap's node id names the pod, so no Kubernetes API is needed
    to find it; the pod must look like one of the Deployment's (`NAME-<hash>-<suffix>`, in its
    namespace when one was given)."""
    try:
        document = json.loads(source.get(BOOTSTRAP_PATH))
    except ValueError:
        return None
    node_id = ""
    for section in document.get("configs", []) if isinstance(document, dict) else []:
        if isinstance(section, dict) and str(section.get("@type", "")).endswith(".BootstrapConfigDump"):
            node_id = str(section.get("bootstrap", {}).get("node", {}).get("id", ""))
    parts = node_id.split("~")
    if len(parts) != 4 or "." not in parts[2]:
        return None
    proxy_id = parts[2]
    pod, namespace = proxy_id.rsplit(".", 1)
    if not pod.startswith(f"{target.name}-") or (namespace_given and namespace != target.namespace):
        shown = target if namespace_given else f"deploy/{target.name}"
        raise MeshctlError(f"the Envoy at {source.name} is the sidecar of {proxy_id}, not of a pod of {shown}")
    return proxy_id
