"""Which VirtualService a host gets, and which names reach its virtual host (Istio's sidecar RDS).

Istio gives a service to the VirtualService that names it exactly before any wildcard one, and
builds a service's domains from its host, its ExternalName aliases and the proxy's DNS domain;
a domain belongs to the first virtual host built (VirtualServices first), not to the first by
name. Each case here failed before meshctl did the same.
"""

from __future__ import annotations

from collections.abc import Callable

from envoy.config.route.v3 import route_pb2

from meshctl.generate.proxy import ProxyConfig

REVIEWS = "reviews.default.svc.cluster.local"


def _vs(name: str, hosts: str, subset: str, created: str, *, extra: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: default, creationTimestamp: '{created}'}}
spec:
  hosts: {hosts}
  http:
  - route: [{{destination: {{host: reviews, subset: {subset}}}}}]
{extra}"""


def _route_config(config: ProxyConfig, name: str) -> route_pb2.RouteConfiguration:
    (found,) = [r for r in config.routes if r.name == name]
    return found


def _by_vhost(config: ProxyConfig, name: str) -> dict[str, tuple[list[str], list[str]]]:
    """vhost name → (domains, clusters of its routes), for the whole route configuration."""
    return {vh.name: (list(vh.domains), [r.route.cluster for r in vh.routes])
            for vh in _route_config(config, name).virtual_hosts}


def test_an_exact_host_beats_an_older_wildcard_virtual_service(client_config: Callable[..., ProxyConfig]) -> None:
    wildcard = _vs("wild", "['*.default.svc.cluster.local']", "v2", "2020-01-01T00:00:00Z")
    exact = _vs("exact", "[reviews]", "v1", "2025-01-01T00:00:00Z")
    vhosts = _by_vhost(client_config(wildcard + "---" + exact), "9080")
    assert vhosts[f"{REVIEWS}:9080"][1] == [f"outbound|9080|v1|{REVIEWS}"]
    # the wildcard keeps the services no VirtualService names exactly
    assert vhosts["ratings.default.svc.cluster.local:9080"][1] == [f"outbound|9080|v2|{REVIEWS}"]
    assert list(vhosts)[-1] == "allow_any"


def test_sidecar_egress_host_imports_a_wildcard_virtual_service_that_covers_it(
        client_config: Callable[..., ProxyConfig]) -> None:
    sidecar = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress: [{hosts: ['*/reviews.default.svc.cluster.local']}]
"""
    wildcard = _vs("wild", "['*.cluster.local']", "v2", "2020-01-01T00:00:00Z")
    vhosts = _by_vhost(client_config(sidecar + "---" + wildcard), "9080")
    assert vhosts == {
        f"{REVIEWS}:9080": ([REVIEWS, REVIEWS + ".", "reviews", "reviews.default.svc", "reviews.default",
                             "10.96.0.50"], [f"outbound|9080|v2|{REVIEWS}"]),
        "allow_any": (["*"], ["PassthroughCluster"]),
    }


EXTERNAL_NAME = """
apiVersion: v1
kind: Service
metadata: {name: critiques, namespace: books}
spec: {type: ExternalName, externalName: reviews.default.svc.cluster.local, ports: [{name: http, port: 9080}]}
"""


def test_external_name_aliases_are_domains_of_the_concrete_service(client_config: Callable[..., ProxyConfig]) -> None:
    vhosts = _by_vhost(client_config(EXTERNAL_NAME), "9080")
    assert vhosts[f"{REVIEWS}:9080"][0] == [
        REVIEWS, REVIEWS + ".", "reviews", "reviews.default.svc", "reviews.default",
        "critiques.books.svc.cluster.local", "critiques.books.svc.cluster.local.", "critiques.books",
        "critiques.books.svc", "10.96.0.50",
    ]
    assert not any(name.startswith("critiques") for name in vhosts)


def test_a_domain_goes_to_the_virtual_service_host_built_first(client_config: Callable[..., ProxyConfig]) -> None:
    """`reviews.default` is both a VirtualService's non-registry host (a dotted name is not
    expanded) and a short name of the reviews service: Istio builds VirtualService hosts first,
    so that host keeps it, though the service's virtual host sorts first."""
    vs = _vs("short", "[reviews.default, reviews]", "v2", "2020-01-01T00:00:00Z")
    vhosts = _by_vhost(client_config(vs), "9080")
    assert vhosts["reviews.default:9080"] == (["reviews.default"], [f"outbound|9080|v2|{REVIEWS}"])
    assert "reviews.default" not in vhosts[f"{REVIEWS}:9080"][0]


def test_service_entry_in_the_cluster_suffix_gets_short_names(client_config: Callable[..., ProxyConfig]) -> None:
    entry = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: default}
spec:
  hosts: [legacy.default.svc.cluster.local, '*.legacy.example.com']
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: NONE
"""
    vhosts = _by_vhost(client_config(entry), "9080")
    assert vhosts["legacy.default.svc.cluster.local:9080"][0] == [
        "legacy.default.svc.cluster.local", "legacy.default.svc.cluster.local.", "legacy",
        "legacy.default.svc", "legacy.default"]
    assert vhosts["*.legacy.example.com:9080"][0] == ["*.legacy.example.com", "*.legacy.example.com."]


def test_alternate_hosts_outside_kubernetes_share_the_proxy_domain_suffix() -> None:
    from meshctl.generate.routes import alternate_hosts

    assert alternate_hosts("foo.local.campus.net", "local.campus.net") == ["foo.local.campus.net.", "foo"]
    assert alternate_hosts("foo.local.campus.net", "remote.campus.net") == [
        "foo.local.campus.net.", "foo.local", "foo.local.campus"]
    assert alternate_hosts("foo.example.com", "") == ["foo.example.com."]
    assert alternate_hosts("10.0.0.1", "default.svc.cluster.local") == []
    assert alternate_hosts("example.com", "default.svc.cluster.local") == ["example.com."]
