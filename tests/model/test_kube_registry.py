"""The registry read as istiod reads a cluster: EndpointSlice conditions and targetRefs, pod
readiness, locality from the pod's node (kubernetes-and-capture.md §1.3-§1.7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from meshctl.model.registry import Registry
from meshctl.model.service import DRAINING, HEALTHY, TERMINATING, UNHEALTHY

RegistryOf = Callable[..., Registry]
HOST = "web.default.svc.cluster.local"


def service(labels: str = "{}", spec: str = "") -> str:
    return f"""
    apiVersion: v1
    kind: Service
    metadata: {{name: web, labels: {labels}}}
    spec:
      selector: {{app: web}}
      ports: [{{name: http, port: 80}}]
      {spec}
    """


def pod(name: str, ip: str, *, ready: str = "True", node: str = "", labels: str = "app: web") -> str:
    node_line = f"nodeName: {node}" if node else ""
    return f"""
    apiVersion: v1
    kind: Pod
    metadata: {{name: {name}, labels: {{{labels}}}}}
    spec:
      containers: [{{name: app}}]
      {node_line}
    status:
      phase: Running
      podIP: {ip}
      conditions: [{{type: Ready, status: "{ready}"}}]
    """


def endpoint_slice(*endpoints: str) -> str:
    items = "\n".join(f"    - {item}" for item in endpoints)
    return f"""
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {{name: web-x1, labels: {{kubernetes.io/service-name: web}}}}
    addressType: IPv4
    endpoints:
{items}
    ports: [{{name: http, port: 8080}}]
    """


def endpoints_of(registry: Registry) -> list[tuple[str, str, str]]:
    (web,) = registry.services_for_host(HOST)
    port = web.port(80)
    assert port is not None
    return [(ep.address, ep.health, ep.workload.name if ep.workload else "") for ep in registry.endpoints(web, port)]


@pytest.mark.parametrize(
    ("conditions", "service_spec", "expected"),
    [
        ("{}", "", HEALTHY),
        ("{ready: true, terminating: true}", "", HEALTHY),
        ("{ready: false}", "", None),  # terminating unset counts as true: terminating, never sent
        ("{ready: false, terminating: false}", "", None),  # unhealthy: not sent by default
        ("{ready: false, terminating: false}", "trafficDistribution: PreferClose", UNHEALTHY),
        ("{ready: false, serving: true, terminating: true}", "", None),
    ],
)
def test_endpoint_health_follows_the_slice_conditions_as_istiod_sends_them(
    registry_of: RegistryOf, conditions: str, service_spec: str, expected: str | None
) -> None:
    registry = registry_of(service(spec=service_spec), endpoint_slice(f"{{addresses: [10.0.0.1], conditions: {conditions}}}"))
    assert endpoints_of(registry) == ([("10.0.0.1", expected, "")] if expected else [])


def test_a_persistent_session_service_keeps_its_draining_endpoints(registry_of: RegistryOf) -> None:
    registry = registry_of(service(labels="{istio.io/persistent-session: JSESSIONID}"), endpoint_slice(
        "{addresses: [10.0.0.1], conditions: {ready: false, serving: true, terminating: true}}",
        "{addresses: [10.0.0.2], conditions: {ready: false, serving: false, terminating: true}}",
    ))
    assert endpoints_of(registry) == [("10.0.0.1", DRAINING, "")]
    assert TERMINATING not in {health for _, health, _ in endpoints_of(registry)}


def test_an_address_takes_its_workload_from_the_target_ref_and_waits_for_a_missing_pod(
    registry_of: RegistryOf,
) -> None:
    registry = registry_of(
        service(), pod("web-1", "10.0.0.1"), pod("web-2", "10.0.0.2", ready="False"), pod("web-3", "10.0.0.3", ready="False"),
        endpoint_slice(
            "{addresses: [10.0.0.1], targetRef: {kind: Pod, name: web-1, namespace: default}}",
            "{addresses: [10.0.0.2], targetRef: {kind: Pod, name: web-2}}",  # found by name, ready or not
            "{addresses: [10.0.0.3]}",  # no targetRef: only a ready pod at that IP lends its labels
            "{addresses: [10.0.0.4], targetRef: {kind: Pod, name: web-4}}",  # the pod is not known (yet)
        ),
    )
    assert endpoints_of(registry) == [("10.0.0.1", HEALTHY, "web-1"), ("10.0.0.2", HEALTHY, "web-2"),
                                      ("10.0.0.3", HEALTHY, "")]


def test_a_pod_reported_unready_is_not_ready(registry_of: RegistryOf) -> None:
    registry = registry_of(service(), pod("web-1", "10.0.0.1"), pod("web-2", "10.0.0.2", ready="False"))
    assert [w.ready for w in registry.workloads] == [True, False]
    assert [address for address, _, _ in endpoints_of(registry)] == ["10.0.0.1"]  # from the selector


def test_a_pod_takes_its_locality_from_its_node(registry_of: RegistryOf) -> None:
    registry = registry_of(
        service(),
        """
        apiVersion: v1
        kind: Node
        metadata:
          name: node-a
          labels: {topology.kubernetes.io/region: eu-west1, topology.kubernetes.io/zone: eu-west1-b,
                   topology.istio.io/subzone: rack-7}
        spec: {podCIDR: 10.0.0.0/24}
        """,
        """
        apiVersion: v1
        kind: Node
        metadata:
          name: node-old
          labels: {failure-domain.beta.kubernetes.io/region: us-east1, failure-domain.beta.kubernetes.io/zone: us-east1-c}
        """,
        pod("on-a", "10.0.0.1", node="node-a"),
        pod("on-old", "10.0.0.2", node="node-old"),
        pod("labelled", "10.0.0.3", node="node-a", labels="app: web, istio-locality: ap.south.z9"),
        pod("on-unknown-node", "10.0.0.4", node="node-gone"),
    )
    assert {w.name: w.locality for w in registry.workloads} == {
        "on-a": "eu-west1/eu-west1-b/rack-7", "on-old": "us-east1/us-east1-c", "labelled": "ap/south/z9",
        "on-unknown-node": "",
    }


def test_a_connecting_proxy_is_matched_to_its_pod_by_id_then_by_address(registry_of: RegistryOf) -> None:
    from meshctl.model.node import ProxyNode
    from meshctl.model.proxy import workload_of

    registry = registry_of(
        pod("web-1", "10.0.0.1"),
        pod("web-2", "10.0.0.2", ready="False"),
        pod("db-1", "10.0.0.3").replace("metadata: {", "metadata: {namespace: data, "),
    )

    def matched(proxy_id: str, ip: str, namespace: str) -> str | None:
        node = ProxyNode("sidecar", (ip,), proxy_id, namespace, f"{namespace}.svc.cluster.local",
                         {"NAMESPACE": namespace})
        workload = workload_of(node, registry)
        return workload.proxy_id if workload else None

    assert matched("web-1.default", "10.0.0.1", "default") == "web-1.default"
    assert matched("web-2.default", "10.9.9.9", "default") == "web-2.default"  # by id, ready or not
    assert matched("envoy-7.default", "10.0.0.1", "default") == "web-1.default"  # by address
    assert matched("envoy-7.default", "10.0.0.2", "default") is None  # not ready: not in the IP index
    assert matched("envoy-7.default", "10.0.0.3", "default") is None  # another namespace's pod
    assert matched("web-1.default", "10.0.0.3", "data") == "db-1.data"  # the id names another namespace


def test_an_endpoint_change_reuses_the_registry_and_rederives_only_that_service(resources: Any) -> None:
    from meshctl.model.snapshot import build_snapshot

    def slice_of(service: str, *ips: str) -> str:
        items = ", ".join(f"{{addresses: [{ip}]}}" for ip in ips)
        return f"""
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {{name: {service}-x1, labels: {{kubernetes.io/service-name: {service}}}}}
        addressType: IPv4
        endpoints: [{items}]
        ports: [{{name: http, port: 8080}}]
        """

    services = [service().replace("name: web,", f"name: {name},") for name in ("web", "api")]
    before = build_snapshot(resources(*services, slice_of("web", "10.0.0.1"), slice_of("api", "10.0.1.1")))

    def endpoints(snapshot: Any, name: str) -> tuple[Any, ...]:
        (found,) = snapshot.registry.services_for_host(f"{name}.default.svc.cluster.local")
        return snapshot.registry.endpoints(found, found.ports[0])

    web, api = endpoints(before, "web"), endpoints(before, "api")
    after = build_snapshot(resources(*services, slice_of("web", "10.0.0.1", "10.0.0.2"), slice_of("api", "10.0.1.1")),
                           previous=before)
    assert after.registry is not before.registry and after.registry.workloads is before.registry.workloads
    assert [e.address for e in endpoints(after, "web")] == ["10.0.0.1", "10.0.0.2"]
    assert endpoints(after, "api") is api and endpoints(before, "web") is web
