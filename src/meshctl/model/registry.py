"""The service registry: services, workloads and endpoints built from Kubernetes and Istio objects.

Offline input rarely has Pods with IPs or Endpoints objects, so the registry fills the gaps the
way a cluster would: each Deployment replica becomes a workload with a deterministic synthetic IP
and name, a Service without a clusterIP gets a deterministic virtual IP, and a Service without
Endpoints gets the endpoints its selector would find. Determinism matters: the same files must
give the same Envoy config on every run and on every machine.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from meshctl.config.resource import Resource
from meshctl import protocols
from meshctl.hostnames import kube_fqdn
from meshctl.model.service import (
    ALIAS,
    CLIENT_SIDE_LB,
    DNS_LB,
    DNS_ROUND_ROBIN,
    PASSTHROUGH,
    WILDCARD_ADDRESS,
    Endpoint,
    Service,
    ServicePort,
    Workload,
)

POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
SERVICE_NETWORK = ipaddress.ip_network("10.96.0.0/16")
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_REPLICA_NAME = re.compile(r"^(?P<owner>.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$")
_RESOLUTIONS = {
    "NONE": PASSTHROUGH,
    "STATIC": CLIENT_SIDE_LB,
    "DNS": DNS_LB,
    "DNS_ROUND_ROBIN": DNS_ROUND_ROBIN,
}


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("/".join(parts).encode(), digest_size=8).digest(), "big")


def _suffix(value: int, length: int) -> str:
    letters = []
    for _ in range(length):
        value, index = divmod(value, len(_SAFE_ALPHABET))
        letters.append(_SAFE_ALPHABET[index])
    return "".join(letters)


class _AddressPool:
    """Deterministic addresses from a network: a hash picks the slot, collisions probe onward."""

    def __init__(self, network: ipaddress.IPv4Network, taken: Iterable[str] = ()) -> None:
        self.base = int(network.network_address)
        self.size = network.num_addresses - 2
        self.used = set(taken)

    def allocate(self, *key: str) -> str:
        slot = _digest(*key) % self.size
        while True:
            address = str(ipaddress.IPv4Address(self.base + 1 + slot))
            if address not in self.used:
                self.used.add(address)
                return address
            slot = (slot + 1) % self.size


@dataclass(frozen=True, slots=True)
class _Injection:
    """Which namespaces and workloads carry a sidecar, per Istio's injection labels."""

    namespaces: Mapping[str, Mapping[str, str]]

    def injected(self, namespace: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        """Pod labels and annotations decide first, then the namespace label.

        Without a Namespace object in the input the namespace is assumed to be part of the mesh:
        offline input describes a mesh, and a proxy exists only for injected workloads.
        """
        mode = labels.get("security.istio.io/tlsMode")
        if mode:
            return mode == "istio"
        if "sidecar.istio.io/status" in annotations:
            return True
        explicit = labels.get("sidecar.istio.io/inject", annotations.get("sidecar.istio.io/inject"))
        if explicit is not None:
            return explicit == "true"
        ns_labels = self.namespaces.get(namespace)
        if ns_labels is None:
            return True
        return ns_labels.get("istio-injection") == "enabled" or "istio.io/rev" in ns_labels


def _locality(labels: Mapping[str, str]) -> str:
    explicit = labels.get("istio-locality")
    if explicit:
        return explicit.replace(".", "/")
    parts = [
        labels.get("topology.kubernetes.io/region", ""),
        labels.get("topology.kubernetes.io/zone", ""),
        labels.get("topology.istio.io/subzone", ""),
    ]
    while parts and not parts[-1]:
        parts.pop()
    return "/".join(parts)


def _container_ports(pod_spec: Mapping) -> dict[str, int]:
    ports: dict[str, int] = {}
    for container in pod_spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name"):
                ports.setdefault(port["name"], port["containerPort"])
    return ports


def _service_account(pod_spec: Mapping) -> str:
    return pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"


def _owner_of(pod_name: str) -> str:
    match = _REPLICA_NAME.match(pod_name)
    return match.group("owner") if match else pod_name


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _export_to(values: Iterable[str], namespace: str) -> frozenset[str]:
    out = {namespace if value == "." else value for value in values if value}
    return frozenset(out) if out else frozenset({"*"})


@dataclass(slots=True)
class Registry:
    """Services by host, workloads by proxy id and IP, and endpoints per service port."""

    services: list[Service] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    _by_host: dict[str, list[Service]] = field(default_factory=dict)
    _by_proxy: dict[str, Workload] = field(default_factory=dict)
    _by_ip: dict[str, Workload] = field(default_factory=dict)
    _by_owner: dict[tuple[str, str], list[Workload]] = field(default_factory=dict)
    _endpoints: dict[tuple[int, str], tuple[Endpoint, ...]] = field(default_factory=dict)
    _endpoint_objects: dict[tuple[str, str], list[Resource]] = field(default_factory=dict)
    _signatures: dict[tuple[int, int | None], int] = field(default_factory=dict)
    _label_index: dict[tuple[str, str, str], set[int]] = field(default_factory=dict)

    def services_for_host(self, hostname: str) -> list[Service]:
        return self._by_host.get(hostname, [])

    def workload(self, proxy_id: str) -> Workload | None:
        return self._by_proxy.get(proxy_id)

    def workload_by_ip(self, ip: str) -> Workload | None:
        return self._by_ip.get(ip)

    def replicas(self, namespace: str, owner: str) -> list[Workload]:
        """The pods of a Deployment (`deploy/NAME.NS` targets), sorted by name."""
        return self._by_owner.get((namespace, owner), [])

    def selected(self, namespace: str, selector: Mapping[str, str]) -> list[Workload]:
        """Workloads of a namespace whose labels include every pair of `selector`."""
        if not selector:
            return []
        sets = [self._label_index.get((namespace, key, value), set()) for key, value in selector.items()]
        found = set.intersection(*sets) if sets else set()
        return [self.workloads[index] for index in sorted(found)]

    def services_of(self, workload: Workload) -> list[Service]:
        """Kubernetes services whose selector picks this workload (its inbound ports)."""
        return [
            service
            for service in self.services
            if service.from_kubernetes
            and service.namespace == workload.namespace
            and service.selector
            and _selects(service.selector, workload.labels)
        ]

    def signature(self, service: Service, port: ServicePort | None = None) -> int:
        """A hash of what a service's endpoints (one port, or all) are made of: a cache key
        component that changes whenever an endpoint, its workload or its health changes."""
        key = (id(service), port.port if port is not None else None)
        found = self._signatures.get(key)
        if found is None:
            ports = [port] if port is not None else service.ports
            found = self._signatures[key] = hash(tuple(
                (ep.address, ep.port, ep.healthy, ep.workload.name if ep.workload else "",
                 ep.workload.source.revision if ep.workload else "")
                for item in ports
                for ep in self.endpoints(service, item)
            ))
        return found

    def endpoints(self, service: Service, port: ServicePort) -> tuple[Endpoint, ...]:
        key = (id(service), port.name or str(port.port))
        found = self._endpoints.get(key)
        if found is None:
            found = tuple(self._compute_endpoints(service, port))
            self._endpoints[key] = found
        return found

    def _compute_endpoints(self, service: Service, port: ServicePort) -> Iterable[Endpoint]:
        if service.resolution == ALIAS:
            return []
        if service.from_kubernetes:
            objects = self._endpoint_objects.get((service.namespace, service.name))
            if objects:
                return self._from_endpoint_objects(service, port, objects)
            return self._from_selector(service, port, self._pods_and_entries(service))
        return self._service_entry_endpoints(service, port)

    def _pods_and_entries(self, service: Service) -> list[Workload]:
        return self.selected(service.namespace, service.selector or {})

    def _from_selector(self, service: Service, port: ServicePort, workloads: list[Workload]) -> Iterable[Endpoint]:
        for workload in workloads:
            if not workload.ready and not service.publish_not_ready:
                continue
            target = _target_port(port, workload)
            if target is None:
                continue
            yield Endpoint(workload.ip, target, workload.labels, workload)

    def _from_endpoint_objects(self, service: Service, port: ServicePort, objects: list[Resource]) -> Iterable[Endpoint]:
        for obj in objects:
            if obj.kind == "Endpoints":
                for subset in obj.spec.get("subsets") or []:
                    number = _named_port(subset.get("ports") or [], port)
                    if number is None:
                        continue
                    for address in subset.get("addresses") or []:
                        yield self._endpoint_at(address["ip"], number, True)
                    if service.publish_not_ready:
                        for address in subset.get("notReadyAddresses") or []:
                            yield self._endpoint_at(address["ip"], number, True)
            else:
                if obj.spec.get("addressType") == "FQDN":
                    continue
                number = _named_port(obj.spec.get("ports") or [], port)
                if number is None:
                    continue
                for item in obj.spec.get("endpoints") or []:
                    ready = (item.get("conditions") or {}).get("ready", True)
                    if ready is False and not service.publish_not_ready:
                        continue
                    for address in item["addresses"]:
                        yield self._endpoint_at(address, number, True)

    def _endpoint_at(self, address: str, port: int, healthy: bool) -> Endpoint:
        workload = self._by_ip.get(address)
        labels = workload.labels if workload else {}
        return Endpoint(address, port, labels, workload, healthy)

    def _service_entry_endpoints(self, service: Service, port: ServicePort) -> Iterable[Endpoint]:
        spec = service.source.spec
        default_target = port.target_port if isinstance(port.target_port, int) else port.port
        for entry in spec.get("endpoints") or []:
            address = entry.get("address", "")
            if not address:
                continue
            ports = entry.get("ports") or {}
            workload = Workload(
                name=service.source.name,
                namespace=service.namespace,
                ip=address,
                labels=entry.get("labels") or {},
                service_account=entry.get("serviceAccount", ""),
                owner=service.source.name,
                source=service.source,
                injected=(entry.get("labels") or {}).get("security.istio.io/tlsMode") == "istio",
                locality=(entry.get("locality") or "").replace(".", "/"),
                weight=entry.get("weight") or 1,
                kind="WorkloadEntry",
                network=entry.get("network", ""),
            )
            yield Endpoint(address, ports.get(port.name, default_target), workload.labels, workload)
        selector = (spec.get("workloadSelector") or {}).get("labels") or {}
        for workload in self.selected(service.namespace, selector):
            target = workload.ports.get(port.name, default_target) if workload.kind == "WorkloadEntry" else default_target
            yield Endpoint(workload.ip, target, workload.labels, workload)

    def _index(self) -> None:
        for index, workload in enumerate(self.workloads):
            self._by_proxy.setdefault(workload.proxy_id, workload)
            self._by_ip.setdefault(workload.ip, workload)
            self._by_owner.setdefault((workload.namespace, workload.owner), []).append(workload)
            for key, value in workload.labels.items():
                self._label_index.setdefault((workload.namespace, key, value), set()).add(index)
        for replicas in self._by_owner.values():
            replicas.sort(key=lambda w: w.name)
        for service in self.services:
            self._by_host.setdefault(service.hostname, []).append(service)


def _named_port(ports: Sequence[Mapping], service_port: ServicePort) -> int | None:
    """The endpoint port that serves `service_port`: matched by name (unnamed if single)."""
    for item in ports:
        if (item.get("name") or "") == (service_port.name or ""):
            return item.get("port")
    if len(ports) == 1 and not service_port.name:
        return ports[0].get("port")
    return None


def _target_port(port: ServicePort, workload: Workload) -> int | None:
    target = port.target_port
    if target is None:
        return port.port
    if isinstance(target, int):
        return target
    if workload.kind == "WorkloadEntry":
        return workload.ports.get(port.name, port.port)
    return workload.ports.get(target)


def build_registry(resources: Sequence[Resource], domain: str = "cluster.local") -> Registry:
    """Services, workloads and endpoint sources from validated resources."""
    by_kind: dict[str, list[Resource]] = defaultdict(list)
    for resource in resources:
        by_kind[resource.kind].append(resource)
    injection = _Injection({ns.name: ns.labels for ns in by_kind["Namespace"]})
    registry = Registry()
    registry.workloads = _workloads(by_kind, injection)
    registry.services = _services(by_kind, domain)
    for obj in by_kind["Endpoints"]:
        registry._endpoint_objects.setdefault((obj.namespace, obj.name), []).append(obj)
    for obj in by_kind["EndpointSlice"]:
        owner = obj.labels.get("kubernetes.io/service-name")
        if owner:
            registry._endpoint_objects.setdefault((obj.namespace, owner), []).append(obj)
    registry._index()
    return registry


def _workloads(by_kind: Mapping[str, list[Resource]], injection: _Injection) -> list[Workload]:
    pods = sorted(by_kind.get("Pod", []), key=lambda r: (r.namespace, r.name))
    deployments = sorted(by_kind.get("Deployment", []), key=lambda r: (r.namespace, r.name))
    explicit_ips = [pod.status.get("podIP") for pod in pods if pod.status.get("podIP")]
    entries = sorted(by_kind.get("WorkloadEntry", []), key=lambda r: (r.namespace, r.name))
    pool = _AddressPool(POD_NETWORK, explicit_ips + [e.spec.get("address", "") for e in entries])
    workloads: list[Workload] = []
    for pod in pods:
        status = pod.status
        ready = status.get("phase", "Running") == "Running"
        workloads.append(
            Workload(
                name=pod.name,
                namespace=pod.namespace,
                ip=status.get("podIP") or pool.allocate("pod", pod.namespace, pod.name),
                labels=dict(pod.labels),
                service_account=_service_account(pod.spec),
                owner=_owner_of(pod.name),
                source=pod,
                ports=_container_ports(pod.spec),
                injected=injection.injected(pod.namespace, pod.labels, pod.annotations),
                locality=_locality(pod.labels),
                ready=ready,
                annotations=dict(pod.annotations),
            )
        )
    for deployment in deployments:
        workloads.extend(_replicas(deployment, pool, injection))
    for entry in entries:
        spec = entry.spec
        labels = dict(entry.labels) | dict(spec.get("labels") or {})
        workloads.append(
            Workload(
                name=entry.name,
                namespace=entry.namespace,
                ip=spec.get("address", ""),
                labels=labels,
                service_account=spec.get("serviceAccount") or "default",
                owner=entry.name,
                source=entry,
                ports=dict(spec.get("ports") or {}),
                injected=labels.get("security.istio.io/tlsMode") == "istio",
                locality=(spec.get("locality") or "").replace(".", "/"),
                weight=spec.get("weight") or 1,
                kind="WorkloadEntry",
                network=spec.get("network", ""),
            )
        )
    return workloads


def _replicas(deployment: Resource, pool: _AddressPool, injection: _Injection) -> Iterable[Workload]:
    """Each replica as Kubernetes would name it: `<deployment>-<template hash>-<suffix>`."""
    template = deployment.spec["template"]
    meta = template.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    annotations = dict(meta.get("annotations") or {})
    spec = template["spec"]
    template_hash = _suffix(_digest("template", deployment.namespace, deployment.name), 10)
    labels.setdefault("pod-template-hash", template_hash)
    count = deployment.spec.get("replicas", 1)
    for index in range(count):
        suffix = _suffix(_digest("replica", deployment.namespace, deployment.name, str(index)), 5)
        name = f"{deployment.name}-{template_hash}-{suffix}"
        yield Workload(
            name=name,
            namespace=deployment.namespace,
            ip=pool.allocate("replica", deployment.namespace, deployment.name, str(index)),
            labels=labels,
            service_account=_service_account(spec),
            owner=deployment.name,
            source=deployment,
            ports=_container_ports(spec),
            injected=injection.injected(deployment.namespace, labels, annotations),
            locality=_locality(labels),
            annotations=annotations,
        )


def _services(by_kind: Mapping[str, list[Resource]], domain: str) -> list[Service]:
    services: list[Service] = []
    kube = sorted(by_kind.get("Service", []), key=lambda r: (r.namespace, r.name))
    explicit = [
        r.spec.get("clusterIP") for r in kube if r.spec.get("clusterIP") not in (None, "", "None")
    ]
    vips = _AddressPool(SERVICE_NETWORK, explicit)
    for obj in kube:
        services.append(_kubernetes_service(obj, vips, domain))
    for entry in sorted(by_kind.get("ServiceEntry", []), key=lambda r: (r.namespace, r.name)):
        services.extend(_service_entry_services(entry))
    services.sort(key=lambda s: (s.created, s.hostname, s.namespace))
    return services


def _kubernetes_service(obj: Resource, vips: _AddressPool, domain: str) -> Service:
    spec = obj.spec
    ports = tuple(
        ServicePort(
            name=p.get("name", ""),
            port=p["port"],
            protocol=protocols.from_kubernetes_port(p.get("name", ""), p["port"], p.get("protocol", "TCP"), p.get("appProtocol", "")),
            target_port=p.get("targetPort", p["port"]),
        )
        for p in spec.get("ports") or []
    )
    cluster_ip = spec.get("clusterIP")
    resolution = CLIENT_SIDE_LB
    alias_for = ""
    if spec.get("type") == "ExternalName":
        resolution, address, alias_for = ALIAS, WILDCARD_ADDRESS, spec.get("externalName", "")
    elif cluster_ip == "None":
        resolution, address = PASSTHROUGH, WILDCARD_ADDRESS
    elif cluster_ip:
        address = cluster_ip
    else:
        address = vips.allocate("service", obj.namespace, obj.name)
    exported = obj.annotations.get("networking.istio.io/exportTo", "")
    return Service(
        hostname=kube_fqdn(obj.name, obj.namespace, domain),
        namespace=obj.namespace,
        name=obj.name,
        ports=ports,
        address=address,
        resolution=resolution,
        source=obj,
        export_to=_export_to((v.strip() for v in exported.split(",")), obj.namespace),
        selector=spec.get("selector") or None,
        alias_for=alias_for,
        publish_not_ready=bool(spec.get("publishNotReadyAddresses")),
    )


def _service_entry_services(entry: Resource) -> Iterable[Service]:
    spec = entry.spec
    ports = tuple(
        ServicePort(
            name=p.get("name", ""),
            port=p["number"],
            protocol=protocols.parse(p.get("protocol", "")),
            target_port=p.get("targetPort"),
        )
        for p in spec.get("ports") or []
    )
    addresses = spec.get("addresses") or []
    resolution = _RESOLUTIONS.get(spec.get("resolution", "NONE"), PASSTHROUGH)
    for host in spec.get("hosts") or []:
        yield Service(
            hostname=host,
            namespace=entry.namespace,
            name=entry.name,
            ports=ports,
            address=addresses[0] if addresses else WILDCARD_ADDRESS,
            resolution=resolution,
            source=entry,
            export_to=_export_to(spec.get("exportTo") or [], entry.namespace),
            mesh_external=spec.get("location", "MESH_EXTERNAL") != "MESH_INTERNAL",
            subject_alt_names=tuple(spec.get("subjectAltNames") or ()),
            from_kubernetes=False,
        )
