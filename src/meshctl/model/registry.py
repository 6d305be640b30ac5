"""The service registry: services, workloads and endpoints, indexed for the lookups translation
and analysis make.

The objects come from `kubernetes` (Services, Pods, Deployment replicas) and `serviceentry`
(ServiceEntry hosts, WorkloadEntries); `synthetic` fills in what offline input leaves out,
`injection` says which workloads carry a sidecar, and `endpoints` derives each service port's
endpoints, computed here once on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from meshctl import protocols
from meshctl.config.kinds.kubernetes import PodStatus
from meshctl.config.kinds.networking import WorkloadEntry
from meshctl.config.resource import Resource
from meshctl.model import endpoints, synthetic
from meshctl.config.kinds.mesh import MeshConfig
from meshctl.hostnames import DEFAULT_DOMAIN
from meshctl.model.injection import InjectionPolicy
from meshctl.model.kubernetes import kubernetes_services, pod_workloads
from meshctl.model.selectors import selects
from meshctl.model.service import ALIAS, POD, Endpoint, Service, ServicePort, ServiceTarget, Workload
from meshctl.model.serviceentry import entry_services, workload_entry

__all__ = ["Registry", "build_registry"]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class Registry:
    """Services by host, workloads by proxy id, IP, owner and label, endpoints per service port.

    Built once per snapshot and shared by every proxy generated from it; only the endpoint and
    signature memos fill in afterwards.
    """

    __slots__ = (
        "_aliases",
        "_by_namespace",
        "_targets",
        "_by_host",
        "_by_ip",
        "_by_label",
        "_by_owner",
        "_by_proxy",
        "_ready_pods",
        "_selecting",
        "_endpoint_objects",
        "_endpoints",
        "_signatures",
        "services",
        "workloads",
    )

    def __init__(self, services: Sequence[Service], workloads: Sequence[Workload],
                 endpoint_objects: Mapping[tuple[str, str], Sequence[Resource]]) -> None:
        self.services = list(services)
        self.workloads = list(workloads)
        self._endpoint_objects = endpoint_objects
        self._by_host: dict[str, list[Service]] = {}
        self._by_proxy: dict[str, Workload] = {}
        self._by_ip: dict[str, Workload] = {}
        self._by_owner: dict[tuple[str, str], list[Workload]] = {}
        self._by_label: dict[tuple[str, str, str], set[int]] = {}
        self._ready_pods: dict[tuple[str, str], Workload] = {}
        self._selecting: dict[str, list[tuple[Service, Mapping[str, str]]]] = {}
        self._endpoints: dict[tuple[int, str], tuple[Endpoint, ...]] = {}
        self._signatures: dict[tuple[int, int | None], int] = {}
        self._targets: dict[int, tuple[Workload, list[ServiceTarget]]] = {}
        for index, workload in enumerate(self.workloads):
            self._by_proxy.setdefault(workload.proxy_id, workload)
            self._by_ip.setdefault(workload.ip, workload)
            if workload.kind == POD and workload.ready:
                self._ready_pods.setdefault((workload.namespace, workload.ip), workload)
            self._by_owner.setdefault((workload.namespace, workload.owner), []).append(workload)
            for key, value in workload.labels.items():
                self._by_label.setdefault((workload.namespace, key, value), set()).add(index)
        for replicas in self._by_owner.values():
            replicas.sort(key=lambda w: w.name)
        self._aliases: dict[str, list[str]] = {}
        self._by_namespace: dict[str, list[Service]] = {}
        for service in self.services:
            self._by_host.setdefault(service.hostname, []).append(service)
            self._by_namespace.setdefault(service.namespace, []).append(service)
            if service.resolution == ALIAS and service.alias_for:
                self._aliases.setdefault(service.alias_for, []).append(service.hostname)
            if service.from_kubernetes and service.selector:
                self._selecting.setdefault(service.namespace, []).append((service, service.selector))
        for aliases in self._aliases.values():
            aliases.sort()

    def with_endpoint_objects(self, endpoint_objects: Mapping[tuple[str, str], Sequence[Resource]]) -> Registry:
        """The same services and workloads (indexes shared, not rebuilt) with other Endpoints
        and EndpointSlices: in a cluster, endpoints change far more often than anything else.
        Endpoints already derived for services whose objects did not change are kept."""
        changed = {key for key in self._endpoint_objects.keys() | endpoint_objects.keys()
                   if [r.revision for r in self._endpoint_objects.get(key, ())]
                   != [r.revision for r in endpoint_objects.get(key, ())]}
        kept = {id(s) for s in self.services if (s.namespace, s.name) not in changed}
        clone = object.__new__(Registry)
        for slot in Registry.__slots__:
            setattr(clone, slot, getattr(self, slot))
        clone._endpoint_objects = endpoint_objects
        clone._targets = {}
        clone._endpoints = {key: value for key, value in self._endpoints.items() if key[0] in kept}
        clone._signatures = {key: value for key, value in self._signatures.items() if key[0] in kept}
        return clone

    def services_for_host(self, hostname: str) -> list[Service]:
        return self._by_host.get(hostname, [])

    def aliases_of(self, hostname: str) -> list[str]:
        """Hosts of the ExternalName services that point at `hostname` (sorted): Istio serves
        them from the concrete service's virtual host."""
        return self._aliases.get(hostname, [])

    def workload(self, proxy_id: str) -> Workload | None:
        return self._by_proxy.get(proxy_id)

    def workload_by_ip(self, ip: str) -> Workload | None:
        return self._by_ip.get(ip)

    def ready_pod_at(self, namespace: str, ip: str) -> Workload | None:
        """The ready pod of a namespace at an address (istiod's pod IP index)."""
        return self._ready_pods.get((namespace, ip))

    def replicas(self, namespace: str, owner: str) -> list[Workload]:
        """The pods of a Deployment (`deploy/NAME.NS` targets), sorted by name."""
        return self._by_owner.get((namespace, owner), [])

    def selected(self, namespace: str, selector: Mapping[str, str]) -> list[Workload]:
        """Workloads of a namespace whose labels include every pair of `selector` (none if empty)."""
        if not selector:
            return []
        sets = [self._by_label.get((namespace, key, value), set()) for key, value in selector.items()]
        return [self.workloads[index] for index in sorted(set.intersection(*sets))]

    def services_of(self, workload: Workload) -> list[Service]:
        """Kubernetes services whose selector picks this workload (its inbound ports)."""
        return [service for service, selector in self._selecting.get(workload.namespace, ())
                if selects(selector, workload.labels)]

    def service_targets(self, workload: Workload) -> list[ServiceTarget]:
        """The ports the workload itself serves, as Istio finds a proxy's ServiceTargets: the
        TCP ports of every service of its own namespace that has it as an endpoint, oldest
        service first. A Kubernetes Service has it when its selector picks the workload's
        labels; a ServiceEntry when one of its endpoints (inline, or a workload its
        workloadSelector picks) is at the workload's address, whichever kind the workload is.
        Found once per workload: its inbound listeners and clusters, and the rules of its own
        services, all ask."""
        found = self._targets.get(id(workload))
        if found is not None and found[0] is workload:
            return found[1]
        targets = []
        for service in self._by_namespace.get(workload.namespace, ()):
            if service.from_kubernetes and not (service.selector and selects(service.selector, workload.labels)):
                continue
            for port in service.ports:
                if port.protocol == protocols.UDP:
                    continue
                target = self._target_port(service, port, workload)
                if target is not None:
                    targets.append(ServiceTarget(service, port, target))
        self._targets[id(workload)] = (workload, targets)
        return targets

    def _target_port(self, service: Service, port: ServicePort, workload: Workload) -> int | None:
        if service.from_kubernetes:
            return endpoints.target_port(port, workload)
        if not workload.ip:
            return None
        return next((ep.port for ep in self.endpoints(service, port) if ep.address == workload.ip), None)

    def signature(self, service: Service, port: ServicePort | None = None) -> int:
        """A hash of what a service's endpoints (one port, or all) are made of: a cache key
        component that changes whenever an endpoint, its workload or its health changes."""
        key = (id(service), port.port if port is not None else None)
        found = self._signatures.get(key)
        if found is None:
            ports = [port] if port is not None else service.ports
            found = self._signatures[key] = hash(tuple(
                (ep.address, ep.port, ep.health, ep.workload.name if ep.workload else "",
                 ep.workload.source.revision if ep.workload else "")
                for item in ports
                for ep in self.endpoints(service, item)
            ))
        return found

    def endpoints(self, service: Service, port: ServicePort) -> tuple[Endpoint, ...]:
        key = (id(service), port.name or str(port.port))
        found = self._endpoints.get(key)
        if found is None:
            found = self._endpoints[key] = tuple(self._derive_endpoints(service, port))
        return found

    def _derive_endpoints(self, service: Service, port: ServicePort) -> Iterable[Endpoint]:
        if service.resolution == ALIAS:
            return ()
        if not service.from_kubernetes:
            return endpoints.from_entry(service, port, self.selected(service.namespace, service.selector or {}))
        objects = self._endpoint_objects.get((service.namespace, service.name))
        if objects:
            return endpoints.from_endpoint_objects(service, port, objects, self._by_proxy.get, self.ready_pod_at)
        return endpoints.from_selected(service, port, self.selected(service.namespace, service.selector or {}))


def _sorted(resources: Iterable[Resource]) -> list[Resource]:
    return sorted(resources, key=lambda r: (r.namespace, r.name))


def build_registry(resources: Sequence[Resource], mesh: MeshConfig | None = None) -> Registry:
    """Services, workloads and endpoint sources from validated resources (services not saying
    whom they are exported to get the mesh's defaultServiceExportTo)."""
    exported = (mesh or MeshConfig()).default_service_export_to
    by_kind: dict[str, list[Resource]] = {}
    for resource in resources:
        by_kind.setdefault(resource.kind, []).append(resource)
    pods = _sorted(by_kind.get("Pod", ()))
    entries = _sorted(by_kind.get("WorkloadEntry", ()))
    taken = [ip for ip in (pod.status_as(PodStatus).pod_ip for pod in pods) if ip]
    pool = synthetic.AddressPool(synthetic.POD_NETWORK, taken + [e.view_as(WorkloadEntry).address for e in entries])
    injection = InjectionPolicy({ns.name: ns.labels for ns in by_kind.get("Namespace", ())})
    nodes = {node.name: node.labels for node in by_kind.get("Node", ())}
    workloads = [*pod_workloads(pods, _sorted(by_kind.get("Deployment", ())), pool, injection, nodes),
                 *(workload_entry(entry) for entry in entries)]
    services = [*kubernetes_services(_sorted(by_kind.get("Service", ())), DEFAULT_DOMAIN, exported),
                *(service for entry in _sorted(by_kind.get("ServiceEntry", ())) for service in entry_services(entry, exported))]
    services.sort(key=lambda s: (s.created, s.hostname, s.namespace))
    return Registry(services, workloads, endpoint_objects_of(resources))


def endpoint_objects_of(resources: Iterable[Resource]) -> dict[tuple[str, str], list[Resource]]:
    """Endpoints and EndpointSlices by the (namespace, name) of the Service they belong to."""
    found: dict[tuple[str, str], list[Resource]] = {}
    for obj in resources:
        if obj.kind == "Endpoints":
            found.setdefault((obj.namespace, obj.name), []).append(obj)
        elif obj.kind == "EndpointSlice":
            owner = obj.labels.get(SERVICE_NAME_LABEL)
            if owner:
                found.setdefault((obj.namespace, owner), []).append(obj)
    return found
