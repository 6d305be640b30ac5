"""Services the routing config names but the input lacks, made up for `translate` without a
workload: which names, which ports, which protocols, and what is left alone."""

from __future__ import annotations

from collections.abc import Callable

from meshctl.model.implied import IMPLIED_ANNOTATION, implied_services, sidecar_namespace
from meshctl.config.resource import Resource
from meshctl.model.registry import build_registry

Resources = Callable[..., list[Resource]]


def _ports(implied, name: str) -> list[tuple[str, int]]:
    [service] = [s for s in implied.services if f"{s.namespace}/{s.name}" == name]
    return [(port["name"], port["port"]) for port in service.spec["ports"]]


def test_every_service_name_a_rule_uses_and_the_input_lacks(resources: Resources) -> None:
    implied = implied_services(resources(
        """
        apiVersion: v1
        kind: Service
        metadata: {name: details, namespace: shop}
        spec: {ports: [{name: http, port: 9080}], selector: {app: details}}
        """,
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: mix, namespace: shop}
        spec:
          hosts: [web]
          http:
          - match: [{port: 8080}]
            route: [{destination: {host: details}, weight: 90}, {destination: {host: api.other}, weight: 10}]
            mirror: {host: shadow.other.svc.cluster.local}
          tcp:
          - match: [{port: 3306}]
            route: [{destination: {host: db, port: {number: 3306}}}]
          - route: [{destination: {host: "*.example.com"}}]
        """,
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: cache, namespace: shop}
        spec:
          host: cache
          trafficPolicy: {portLevelSettings: [{port: {number: 6379}, connectionPool: {tcp: {maxConnections: 5}}}]}
        """,
    ))
    assert sorted(f"{s.namespace}/{s.name}" for s in implied.services) == [
        "other/shadow", "shop/cache", "shop/db", "shop/web"], "details exists; api.other and wildcards are no FQDNs"
    assert _ports(implied, "shop/web") == [("tcp-3306", 3306), ("http-8080", 8080)], "its match ports, by rule kind"
    assert _ports(implied, "shop/db") == [("tcp-3306", 3306)]
    assert _ports(implied, "other/shadow") == [("http-80", 80)], "no port named anywhere: 80"
    assert _ports(implied, "shop/cache") == [("http-6379", 6379)]
    assert all(s.annotations[IMPLIED_ANNOTATION] for s in implied.services)
    assert not any(s.spec.get("selector") for s in implied.services), "made up: no endpoints"
    assert implied.notes[-2:] == (
        "*.example.com (named by VirtualService shop/mix) is not a Kubernetes service name: nothing made up for it; "
        "a ServiceEntry would define it",
        "api.other (named by VirtualService shop/mix) is not a Kubernetes service name: nothing made up for it; "
        "a ServiceEntry would define it")  # Istio reads a dotted short name as written, not as api.other.svc
    registry = build_registry([*resources(), *implied.services])
    assert [p.port for p in registry.services_for_host("web.shop.svc.cluster.local")[0].ports] == [3306, 8080]


def test_a_service_entry_host_is_not_made_up_again(resources: Resources) -> None:
    implied = implied_services(resources(
        """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: legacy, namespace: shop}
        spec: {hosts: [legacy.shop.svc.cluster.local], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
        """,
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: legacy, namespace: shop}
        spec: {hosts: [legacy], http: [{route: [{destination: {host: legacy}}]}]}
        """,
    ))
    assert implied.services == () and implied.notes == ()


def test_the_namespace_of_a_generic_sidecar(resources: Resources) -> None:
    loaded = resources("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: a, namespace: shop}
        spec: {hosts: [a], http: [{route: [{destination: {host: a}}]}]}
        """)
    assert sidecar_namespace(loaded, "default") == ("shop", "")
    assert sidecar_namespace([], "default") == ("default", "")
