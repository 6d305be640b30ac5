"""What every check reads: the mesh model translation builds, and the resources as given.

Analysis and translation must agree on which services exist, which workloads a selector picks
and what a WorkloadEntry's labels are, so the checks read the same snapshot and registry the
translator does (`model/`); only what the model has no place for (input order, references by
name, the host rules of Istio's analyzers) is kept here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from meshctl.config.resource import Resource
from meshctl.hostnames import fqdn
from meshctl.model.meshconfig import MeshConfig
from meshctl.model.registry import Registry
from meshctl.model.service import Service
from meshctl.model.injection import DATAPLANE_MODE_LABEL, INJECTION_LABEL, REVISION_LABEL
from meshctl.model.snapshot import MeshSnapshot, build_snapshot

__all__ = ["AMBIENT_MODE_LABEL", "AnalysisContext", "HostIndex", "ambient_namespace", "ambient_pod"]

ALL = "*"
AMBIENT_MODE_LABEL = DATAPLANE_MODE_LABEL
AMBIENT_REDIRECTION = "ambient.istio.io/redirection"
INJECTION_LABELS = (INJECTION_LABEL, REVISION_LABEL)


class HostIndex:
    """Services by (visibility scope, fully qualified host), looked up as Istio's analyzers do.

    A scope is `*` (exported to every namespace) or one namespace the service is exported to.
    Exact names are one dictionary probe per scope; wildcard hosts (`*.example.com`), which are
    few, are scanned only when no exact name answers. So a thousand VirtualServices routing to
    a thousand services cost a thousand probes, not a million comparisons.
    """

    __slots__ = ("_exact", "_wildcards")

    def __init__(self, services: Iterable[Service]) -> None:
        self._exact: dict[tuple[str, str], Service] = {}
        self._wildcards: list[tuple[str, str, Service]] = []
        for service in services:
            host = fqdn(service.hostname, service.namespace)
            scopes = [ALL] if ALL in service.export_to else sorted(service.export_to)
            for scope in scopes:
                self._exact[(scope, host)] = service
                if host.startswith("*"):
                    self._wildcards.append((scope, host[1:], service))

    def lookup(self, host: str, namespace: str, export_to: Sequence[str] = ()) -> Service | None:
        """The service `host`, written in `namespace`, reaches: one exported to everyone, then
        one exported to the namespaces the referring object is itself exported to (its own
        namespace when it names none), then the first wildcard host visible from `namespace`
        that covers `host` (Istio's GetDestinationHost)."""
        name = fqdn(host, namespace)
        found = self._exact.get((ALL, name))
        if found is not None:
            return found
        for scope in [namespace if entry == "." else entry for entry in export_to] or [namespace]:
            found = self._exact.get((scope, name))
            if found is not None:
                return found
        bare = host[1:] if host.startswith("*") else host
        for scope, suffix, service in self._wildcards:
            if scope in (ALL, namespace) and bare.endswith(suffix):
                return service
        return None


def ambient_namespace(namespace: Resource | None) -> bool:
    """A namespace labelled for ambient mode and for no sidecar injection (those labels win)."""
    if namespace is None:
        return False
    labels = namespace.labels
    return labels.get(AMBIENT_MODE_LABEL) == "ambient" and not any(key in labels for key in INJECTION_LABELS)


def ambient_pod(annotations: Mapping[str, str]) -> bool:
    """A pod Istio's CNI enrolled in ambient mode (the annotation it sets)."""
    return annotations.get(AMBIENT_REDIRECTION) == "enabled"


class AnalysisContext:
    """The resources of one analysis by kind and by name, and the snapshot built from them."""

    __slots__ = ("_by_key", "_by_kind", "_given_services", "_given_workloads", "_hosts", "mesh", "snapshot")

    def __init__(self, resources: Sequence[Resource], mesh: MeshConfig | None = None,
                 assumed: Sequence[Resource] = ()) -> None:
        """`assumed` are resources the input did not give but analysis assumes (Istio's default
        ingress gateway): analyzed like the rest, they do not make the input count as one that
        describes a registry or workloads."""
        self.mesh = mesh or MeshConfig()
        self._given_services = any(r.kind in ("Service", "ServiceEntry") for r in resources)
        self._given_workloads = any(r.kind in ("Pod", "Deployment", "WorkloadEntry") for r in resources)
        resources = [*resources, *assumed]
        self._by_kind: dict[str, list[Resource]] = {}
        self._by_key: dict[tuple[str, str, str], Resource] = {}
        for resource in resources:
            self._by_kind.setdefault(resource.kind, []).append(resource)
            self._by_key[resource.key] = resource
        self.snapshot: MeshSnapshot = build_snapshot(resources, self.mesh)
        self._hosts: HostIndex | None = None

    @property
    def registry(self) -> Registry:
        return self.snapshot.registry

    def of(self, kind: str) -> Sequence[Resource]:
        """The resources of a kind, in input order."""
        return self._by_kind.get(kind, [])

    def find(self, kind: str, namespace: str, name: str) -> Resource | None:
        return self._by_key.get((kind, namespace, name))

    def namespace(self, name: str) -> Resource | None:
        """The Namespace object of that name, when the input has one."""
        return self._by_key.get(("Namespace", "", name))

    @property
    def has_registry(self) -> bool:
        """Host checks only make sense when the input describes at least part of the registry."""
        return self._given_services and bool(self.registry.services)

    @property
    def has_workloads(self) -> bool:
        """Selector checks only make sense when the input contains workloads at all."""
        return self._given_workloads and bool(self.registry.workloads)

    def lookup(self, host: str, namespace: str, export_to: Sequence[str] = ()) -> Service | None:
        """The service a host written in `namespace` reaches (see `HostIndex.lookup`).

        Like Istio's analyzers (and unlike istiod), a ServiceEntry's short host names count as
        names in its own namespace, as if written as FQDNs.
        """
        if self._hosts is None:
            self._hosts = HostIndex(self.registry.services)
        return self._hosts.lookup(host, namespace, export_to)
