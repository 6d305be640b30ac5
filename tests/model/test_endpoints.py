"""Endpoint derivation: from Endpoints and EndpointSlices, from a selector, from a ServiceEntry."""

from __future__ import annotations

from collections.abc import Callable

from meshctl.model.registry import Registry
from meshctl.model.service import Service

RegistryOf = Callable[..., Registry]

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: web-port}
  - {name: admin, port: 81, targetPort: 9001}
  - {name: plain, port: 82}
"""


def pod(name: str, ip: str, phase: str = "Running", labels: str = "{app: web}") -> str:
    return f"""
    apiVersion: v1
    kind: Pod
    metadata: {{name: {name}, labels: {labels}}}
    spec:
      containers:
      - name: app
        ports: [{{name: web-port, containerPort: 8080}}]
    status: {{podIP: {ip}, phase: {phase}}}
    """


def addresses(registry: Registry, host: str, port: int) -> list[tuple[str, int]]:
    (service,) = registry.services_for_host(host)
    service_port = service.port(port)
    assert service_port is not None
    return [(ep.address, ep.port) for ep in registry.endpoints(service, service_port)]


def only_service(registry: Registry) -> Service:
    (service,) = registry.services
    return service


def test_a_selector_picks_ready_pods_and_resolves_target_ports(registry_of: RegistryOf) -> None:
    registry = registry_of(SERVICE, pod("a", "10.0.0.1"), pod("b", "10.0.0.2", phase="Pending"),
                           pod("other", "10.0.0.3", labels="{app: other}"))
    host = "web.default.svc.cluster.local"
    assert addresses(registry, host, 80) == [("10.0.0.1", 8080)]
    assert addresses(registry, host, 81) == [("10.0.0.1", 9001)]
    assert addresses(registry, host, 82) == [("10.0.0.1", 82)]


def test_publish_not_ready_addresses_keeps_pods_that_are_not_ready(registry_of: RegistryOf) -> None:
    registry = registry_of(SERVICE.replace("spec:\n", "spec:\n  publishNotReadyAddresses: true\n"),
                           pod("a", "10.0.0.1"), pod("b", "10.0.0.2", phase="Pending"))
    assert addresses(registry, "web.default.svc.cluster.local", 80) == [("10.0.0.1", 8080), ("10.0.0.2", 8080)]


def test_a_named_target_port_the_pod_lacks_gives_no_endpoint(registry_of: RegistryOf) -> None:
    registry = registry_of(SERVICE, pod("a", "10.0.0.1").replace("web-port", "other-port"))
    assert addresses(registry, "web.default.svc.cluster.local", 80) == []
    assert addresses(registry, "web.default.svc.cluster.local", 81) == [("10.0.0.1", 9001)]


def test_endpoints_objects_win_over_the_selector_and_match_ports_by_name(registry_of: RegistryOf) -> None:
    registry = registry_of(SERVICE, pod("a", "10.0.0.1"), """
    apiVersion: v1
    kind: Endpoints
    metadata: {name: web}
    subsets:
    - addresses: [{ip: 10.0.0.1}, {ip: 10.1.0.9}]
      notReadyAddresses: [{ip: 10.1.0.10}]
      ports: [{name: http, port: 7000}, {name: admin, port: 7001}]
    """)
    host = "web.default.svc.cluster.local"
    assert addresses(registry, host, 80) == [("10.0.0.1", 7000), ("10.1.0.9", 7000)]
    assert addresses(registry, host, 81) == [("10.0.0.1", 7001), ("10.1.0.9", 7001)]
    assert addresses(registry, host, 82) == []
    service = registry.services_for_host(host)[0]
    port = service.port(80)
    assert port is not None
    labelled, unknown = registry.endpoints(service, port)
    assert (dict(labelled.labels), labelled.workload is not None) == ({"app": "web"}, True)
    assert (dict(unknown.labels), unknown.workload) == ({}, None)


def test_endpoint_slices_skip_fqdn_slices_and_endpoints_not_ready(registry_of: RegistryOf) -> None:
    registry = registry_of("""
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      ports: [{port: 80}]
    """, """
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: web-a, labels: {kubernetes.io/service-name: web}}
    addressType: IPv4
    endpoints:
    - {addresses: [10.0.0.1]}
    - {addresses: [10.0.0.2], conditions: {ready: false}}
    - {addresses: [10.0.0.3], conditions: {ready: true}}
    ports: [{port: 8080}]
    """, """
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: web-b, labels: {kubernetes.io/service-name: web}}
    addressType: FQDN
    endpoints:
    - {addresses: [web.example.com]}
    ports: [{port: 8080}]
    """, """
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: unowned}
    addressType: IPv4
    endpoints:
    - {addresses: [10.9.9.9]}
    ports: [{port: 8080}]
    """)
    assert addresses(registry, "web.default.svc.cluster.local", 80) == [("10.0.0.1", 8080), ("10.0.0.3", 8080)]


def test_a_service_entry_takes_its_inline_endpoints_with_an_address(registry_of: RegistryOf) -> None:
    registry = registry_of("""
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: db}
    spec:
      hosts: [db.example.com]
      location: MESH_INTERNAL
      resolution: STATIC
      ports:
      - {name: tcp, number: 5432, protocol: TCP, targetPort: 6432}
      endpoints:
      - {address: 10.2.0.1, labels: {zone: a}}
      - {address: 10.2.0.2, ports: {tcp: 7432}}
    """)
    assert addresses(registry, "db.example.com", 5432) == [("10.2.0.1", 6432), ("10.2.0.2", 7432)]
    first = only_service(registry).inline_workloads[0]
    assert (first.name, first.kind, dict(first.labels), first.service_account) == ("db", "WorkloadEntry", {"zone": "a"}, "")


def test_a_service_entry_selects_workload_entries_and_pods(registry_of: RegistryOf) -> None:
    registry = registry_of("""
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: vm}
    spec:
      hosts: [vm.example.com]
      location: MESH_INTERNAL
      resolution: STATIC
      ports: [{name: http, number: 80, protocol: HTTP}]
      workloadSelector: {labels: {app: vm}}
    """, """
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: vm-1}
    spec: {address: 10.3.0.1, labels: {app: vm}, ports: {http: 8080}}
    """, pod("p", "10.0.0.5", labels="{app: vm}"))
    assert sorted(addresses(registry, "vm.example.com", 80)) == [("10.0.0.5", 80), ("10.3.0.1", 8080)]
