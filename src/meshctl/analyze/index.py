"""The resources of one analysis, indexed the way the checks look them up.

Analyzers answer questions such as "which services does this host name reach from namespace
ns?" or "which workloads carry these labels?" many times; the index answers them from maps built
once, so a check stays a short loop over the resources it is about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshctl.config.resource import Resource
from meshctl.hostnames import fqdn, intersects, kube_fqdn

EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"


@dataclass(frozen=True, slots=True)
class Service:
    """One host of the service registry: a Kubernetes Service or one host of a ServiceEntry.

    `selector` holds the workload labels the service picks (None when it picks none, as for
    an external ServiceEntry); `endpoint_labels` the labels of a ServiceEntry's own endpoints.
    """

    host: str
    namespace: str
    export_to: tuple[str, ...]
    ports: tuple[int, ...]
    resource: Resource
    selector: Mapping[str, str] | None = None
    endpoint_labels: tuple[Mapping[str, str], ...] = ()

    def visible_from(self, namespace: str) -> bool:
        return visible(self.export_to, self.namespace, namespace)


@dataclass(frozen=True, slots=True)
class Workload:
    """Something that runs and carries labels: a Pod, a Deployment's pods, a WorkloadEntry."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    resource: Resource
    is_pod: bool


def visible(export_to: tuple[str, ...], owner_namespace: str, namespace: str) -> bool:
    """Is a resource exported with `export_to` from `owner_namespace` seen in `namespace`?"""
    if not export_to:
        return True
    return any(entry in ("*", namespace) or (entry == "." and owner_namespace == namespace) for entry in export_to)


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Kubernetes equality selection: every selector label is present with the same value."""
    return all(labels.get(key) == value for key, value in selector.items())


@dataclass(slots=True)
class MeshIndex:
    """Every resource of the analysis, by kind, plus the registry and the workloads."""

    by_kind: dict[str, list[Resource]] = field(default_factory=lambda: defaultdict(list))
    by_key: dict[tuple[str, str, str], Resource] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)

    @classmethod
    def build(cls, resources: Iterable[Resource]) -> MeshIndex:
        index = cls()
        for resource in resources:
            index.by_kind[resource.kind].append(resource)
            index.by_key[resource.key] = resource
        for resource in index.of("Service"):
            index.services.append(_kubernetes_service(resource))
        for resource in index.of("ServiceEntry"):
            index.services.extend(_service_entry_hosts(resource))
        index.workloads.extend(_workloads(index))
        return index

    def of(self, kind: str) -> Sequence[Resource]:
        return self.by_kind.get(kind, [])

    @property
    def has_registry(self) -> bool:
        """Host checks only make sense when the input describes at least part of the registry."""
        return bool(self.services)

    @property
    def has_workloads(self) -> bool:
        """Selector checks only make sense when the input contains workloads at all."""
        return bool(self.workloads)

    def lookup(self, host: str, namespace: str) -> list[Service]:
        """The services `host`, written in `namespace`, reaches: exact names before wildcards."""
        name = fqdn(host, namespace)
        candidates = [service for service in self.services if service.visible_from(namespace)]
        exact = [service for service in candidates if service.host == name]
        if exact:
            return exact
        return [service for service in candidates if intersects(service.host, name)]

    def find(self, kind: str, namespace: str, name: str) -> Resource | None:
        return self.by_key.get((kind, namespace, name))


def _export_to(values: Any) -> tuple[str, ...]:
    return tuple(item for item in values or () if isinstance(item, str))


def _kubernetes_service(resource: Resource) -> Service:
    spec = resource.spec
    annotation = resource.annotations.get(EXPORT_TO_ANNOTATION, "")
    export_to = tuple(part.strip() for part in annotation.split(",") if part.strip())
    ports = tuple(port["port"] for port in spec.get("ports") or [])
    selector = spec.get("selector") or None
    return Service(kube_fqdn(resource.name, resource.namespace), resource.namespace, export_to, ports,
                   resource, selector)


def _service_entry_hosts(resource: Resource) -> list[Service]:
    spec = resource.spec
    ports = tuple(port["number"] for port in spec.get("ports") or [])
    selector = (spec.get("workloadSelector") or {}).get("labels") or None
    endpoints = tuple(endpoint.get("labels") or {} for endpoint in spec.get("endpoints") or [])
    export_to = _export_to(spec.get("exportTo"))
    return [
        Service(fqdn(host, resource.namespace), resource.namespace, export_to, ports, resource, selector, endpoints)
        for host in spec.get("hosts") or []
    ]


def _workloads(index: MeshIndex) -> list[Workload]:
    found = [Workload(pod.name, pod.namespace, pod.labels, pod, True) for pod in index.of("Pod")]
    for deployment in index.of("Deployment"):
        labels = ((deployment.spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        found.append(Workload(deployment.name, deployment.namespace, labels, deployment, True))
    for entry in index.of("WorkloadEntry"):
        found.append(Workload(entry.name, entry.namespace, entry.spec.get("labels") or {}, entry, False))
    return found
