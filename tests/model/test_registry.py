"""The registry's objects and queries: what each kind becomes, and the lookups made of them."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from meshctl.model.registry import Registry
from meshctl.model.service import ALIAS, CLIENT_SIDE_LB, PASSTHROUGH, WILDCARD_ADDRESS
from meshctl.model.synthetic import SERVICE_NETWORK

RegistryOf = Callable[..., Registry]


def service(name: str, spec: str = "ports: [{port: 80}]", namespace: str = "default", annotations: str = "{}") -> str:
    return f"""
    apiVersion: v1
    kind: Service
    metadata: {{name: {name}, namespace: {namespace}, annotations: {annotations}}}
    spec: {{{spec}}}
    """


def deployment(name: str, replicas: int, labels: str = "{app: web}") -> str:
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: {name}}}
    spec:
      replicas: {replicas}
      selector: {{matchLabels: {labels}}}
      template:
        metadata: {{labels: {labels}}}
        spec: {{serviceAccountName: web-sa, containers: [{{name: app}}]}}
    """


def test_kubernetes_services_by_cluster_ip_and_type(registry_of: RegistryOf) -> None:
    registry = registry_of(
        service("fixed", "clusterIP: 10.96.0.10, ports: [{port: 80}]"),
        service("headless", "clusterIP: None, ports: [{port: 80}]"),
        service("alias", "type: ExternalName, externalName: db.example.com"),
        service("allocated"),
    )
    by_name = {s.name: s for s in registry.services}
    assert (by_name["fixed"].address, by_name["fixed"].resolution) == ("10.96.0.10", CLIENT_SIDE_LB)
    assert (by_name["headless"].address, by_name["headless"].resolution) == (WILDCARD_ADDRESS, PASSTHROUGH)
    assert (by_name["alias"].resolution, by_name["alias"].alias_for) == (ALIAS, "db.example.com")
    allocated = by_name["allocated"].address
    assert allocated != "10.96.0.10" and ipaddress.IPv4Address(allocated) in SERVICE_NETWORK
    assert by_name["allocated"].has_vip and by_name["allocated"].hostname == "allocated.default.svc.cluster.local"


def test_export_to_annotation(registry_of: RegistryOf) -> None:
    registry = registry_of(service("a", annotations='{networking.istio.io/exportTo: ". , shop"}', namespace="web"))
    (exported,) = registry.services
    assert exported.export_to == frozenset({"web", "shop"})
    assert [exported.visible_to(ns) for ns in ("web", "shop", "other")] == [True, True, False]


def test_deployment_replicas_are_workloads_of_their_owner(registry_of: RegistryOf) -> None:
    registry = registry_of(deployment("web", 3), deployment("idle", 0))
    replicas = registry.replicas("default", "web")
    assert len(replicas) == 3 and [w.name for w in replicas] == sorted(w.name for w in replicas)
    assert {(w.owner, w.service_account, w.labels["app"]) for w in replicas} == {("web", "web-sa", "web")}
    assert len({w.ip for w in replicas}) == 3
    assert registry.replicas("default", "idle") == []
    assert registry.workload(replicas[0].proxy_id) is replicas[0]
    assert registry.workload_by_ip(replicas[1].ip) is replicas[1]


def test_selection_and_the_services_in_front_of_a_workload(registry_of: RegistryOf) -> None:
    registry = registry_of(
        deployment("web", 1), deployment("api", 1, labels="{app: api}"),
        service("web", "selector: {app: web}, ports: [{port: 80}]"),
        service("other-ns", "selector: {app: web}, ports: [{port: 80}]", namespace="shop"),
        service("no-selector"),
    )
    (web,) = registry.selected("default", {"app": "web"})
    assert web.owner == "web"
    assert registry.selected("default", {}) == []
    assert registry.selected("default", {"app": "web", "tier": "x"}) == []
    assert [s.name for s in registry.services_of(web)] == ["web"]


def test_a_workload_entry_object_merges_its_metadata_labels_over_its_spec(registry_of: RegistryOf) -> None:
    registry = registry_of("""
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: vm-1, labels: {app: vm, version: v1}}
    spec: {address: 10.3.0.1, labels: {version: v0, zone: a}, locality: us-east.a, weight: 3}
    """)
    (entry,) = registry.workloads
    assert dict(entry.labels) == {"app": "vm", "version": "v1", "zone": "a"}
    assert (entry.kind, entry.ip, entry.service_account, entry.locality, entry.weight) == (
        "WorkloadEntry", "10.3.0.1", "default", "us-east/a", 3)


def test_a_service_entry_host_per_service_sharing_its_inline_workloads(registry_of: RegistryOf) -> None:
    registry = registry_of("""
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: api}
    spec:
      hosts: [a.example.com, b.example.com]
      exportTo: ["."]
      location: MESH_INTERNAL
      resolution: STATIC
      ports: [{name: https, number: 443, protocol: TLS}]
      endpoints: [{address: 10.4.0.1, serviceAccount: api}]
    """)
    first, second = registry.services
    assert (first.hostname, second.hostname) == ("a.example.com", "b.example.com")
    assert first.inline_workloads is second.inline_workloads
    assert first.inline_workloads[0].service_account == "api"
    assert (first.resolution, first.mesh_external, first.from_kubernetes, first.export_to) == (
        CLIENT_SIDE_LB, False, False, frozenset({"default"}))
    assert registry.workloads == []
