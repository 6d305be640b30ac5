"""What every check reads: the mesh model translation builds, and the resources as given.

Analysis and translation must agree on which services a host reaches, which workloads a selector
picks and what a WorkloadEntry's labels are, so the checks read the same snapshot and registry
the translator does (`model/`); only what the model has no place for (input order, references
by name, Istio analyzer's own host rules) is kept here.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshctl.config.resource import Resource
from meshctl.hostnames import fqdn, intersects
from meshctl.model.meshconfig import MeshConfig
from meshctl.model.registry import Registry
from meshctl.model.service import Service
from meshctl.model.snapshot import MeshSnapshot, build_snapshot

__all__ = ["AnalysisContext"]


class AnalysisContext:
    """The resources of one analysis by kind and by name, and the snapshot built from them."""

    __slots__ = ("_by_key", "_by_kind", "_given_services", "_given_workloads", "mesh", "snapshot")

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

    @property
    def registry(self) -> Registry:
        return self.snapshot.registry

    def of(self, kind: str) -> Sequence[Resource]:
        """The resources of a kind, in input order."""
        return self._by_kind.get(kind, [])

    def find(self, kind: str, namespace: str, name: str) -> Resource | None:
        return self._by_key.get((kind, namespace, name))

    @property
    def has_registry(self) -> bool:
        """Host checks only make sense when the input describes at least part of the registry."""
        return self._given_services and bool(self.registry.services)

    @property
    def has_workloads(self) -> bool:
        """Selector checks only make sense when the input contains workloads at all."""
        return self._given_workloads and bool(self.registry.workloads)

    def lookup(self, host: str, namespace: str) -> list[Service]:
        """The services `host`, written in `namespace`, reaches: exact names before wildcards.

        Like Istio's analyzers (and unlike istiod), a ServiceEntry's short host names count as
        names in its own namespace, as if written as FQDNs.
        """
        name = fqdn(host, namespace)
        candidates = [service for service in self.registry.services if service.visible_to(namespace)]
        exact = [service for service in candidates if fqdn(service.hostname, service.namespace) == name]
        if exact:
            return exact
        return [service for service in candidates if intersects(fqdn(service.hostname, service.namespace), name)]
