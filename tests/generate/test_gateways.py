"""Gateways translated whole, against Istio's own expectations.

Each table reproduces cases of Istio's tests, by name (pilot/pkg/networking/core/):
gateway_test.go's TestBuildGatewayListeners (which listeners a merge yields) and
TestGatewayHTTPRouteConfig (virtual hosts, their domains, how many routes, require_tls), and
gateway_simulation_test.go's simulations (TestHTTPGateway, TestGatewayConflicts,
TestTargetPort, TestGatewayServices, TestDisablePortTranslation), whose "calls" are followed
here through the generated listeners and routes the way Envoy picks them (`call`).

Differences from Istio's fixtures, all in the inputs, never in the expectations: gateways are
proxies of a pod in istio-system labelled `istio: ingressgateway` (address 1.1.1.1, where
Istio's fake proxy is); servers have hosts and unique port names (Istio's tests skip schema
validation, meshctl never does); Istio's simulation suffix-less hosts (`a.default`) are full
names here (`a.default.svc.cluster.local`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshctl.config.loader import load
from meshctl.generate.proxy import ProxyConfig, generate
from meshctl.hostnames import matches
from meshctl.model.snapshot import build_snapshot

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: gw, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {serviceAccountName: gw, containers: [{name: istio-proxy, image: proxyv2}]}
status: {podIP: 1.1.1.1}
"""


def gateway(name: str, namespace: str, *servers: str, selector: bool = True, service: str = "") -> str:
    """A Gateway selecting the pod (or, with `service`, naming its Service, as Istio's Gateway
    API translation does), one server per YAML flow mapping."""
    annotations = f"\n  annotations: {{internal.istio.io/gateway-service: \"{service}\"}}" if service else ""
    select = "\n  selector: {istio: ingressgateway}" if selector and not service else ""
    body = "".join(f"\n  - {server}" for server in servers)
    return f"---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: {name}\n  namespace: " \
           f"{namespace}{annotations}\nspec:{select}\n  servers:{body}\n"


def vs(name: str, namespace: str, body: str, created: str = "") -> str:
    stamp = f", creationTimestamp: \"{created}\"" if created else ""
    return f"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, " \
           f"namespace: {namespace}{stamp}}}\nspec:\n{body}\n"


def entry(name: str, host: str, port: int, target: int, labels: str = "") -> str:
    """A ServiceEntry with an endpoint at the gateway's address: one of its Services."""
    meta_labels = f", labels: {{{labels}}}" if labels else ""
    return f"---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, " \
           f"namespace: istio-system{meta_labels}}}\nspec:\n  hosts: [\"{host}\"]\n  ports: [{{number: {port}, " \
           f"targetPort: {target}, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n" \
           f"  endpoints: [{{address: 1.1.1.1}}]\n"


@pytest.fixture
def router(tmp_path: Path) -> Callable[..., ProxyConfig]:
    """The gateway pod's config for POD plus YAML (a Gateway translated, not checked for
    consistency: secrets no Secret backs are expected here)."""
    counter = iter(range(1000))

    def build(*docs: str, metadata: dict[str, str] | None = None) -> ProxyConfig:
        path = tmp_path / f"input-{next(counter)}.yaml"
        path.write_text(POD + "".join(docs))
        result = load([str(path)], "default")
        assert not result.problems, "\n".join(map(str, result.problems))
        snapshot = build_snapshot(result.resources)
        proxy = snapshot.proxy("gw.istio-system")
        assert proxy.is_router
        if metadata:
            proxy = replace(proxy, metadata=metadata)
        return generate(snapshot, proxy)

    return build


def listener_names(config: ProxyConfig) -> list[str]:
    return sorted(listener.name for listener in config.listeners)


# --- which listeners (TestBuildGatewayListeners) -----------------------------------------------

TARGET_SERVICE = """---
apiVersion: v1
kind: Service
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""
TLS_VS = vs("pass", "default", """  gateways: [testns/passthrough-gateway]
  hosts: [barone.example.com]
  tls:
  - match: [{port: 9443, sniHosts: [barone.example.com]}]
    route: [{destination: {host: foo.com}}]""")
TCP_VS = vs("tcp", "default", """  gateways: [testns/gateway1]
  hosts: [tcp.example.com]
  tcp:
  - match: [{port: 9443}]
    route: [{destination: {host: foo.com}}]""")


def tcp_any(name: str, gateway_name: str, port: int) -> str:
    return vs(name, "default", f"""  gateways: [testns/{gateway_name}]
  hosts: ["*"]
  tcp:
  - match: [{{port: {port}}}]
    route: [{{destination: {{host: foo.com}}}}]""")


def http_any(name: str, gateway_name: str, hosts: str = '"*"') -> str:
    return vs(name, "default", f"""  gateways: [testns/{gateway_name}]
  hosts: [{hosts}]
  http:
  - route: [{{destination: {{host: example.org, port: {{number: 80}}}}}}]""")


SIMPLE = "tls: {mode: SIMPLE, credentialName: test}"

LISTENER_CASES = [
    ("targetPort overrides service port", [TARGET_SERVICE, gateway("g", "ns", "{port: {name: http, number: 80, "
                                                                              "protocol: HTTP}, hosts: ['*']}")],
     None, ["0.0.0.0_8080"]),
    ("multiple ports", [gateway("g", "ns", "{port: {name: http, number: 80, protocol: HTTP}, hosts: ['*']}",
                                "{port: {name: http2, number: 801, protocol: HTTP}, hosts: ['*']}")],
     None, ["0.0.0.0_80", "0.0.0.0_801"]),
    ("privileged port on unprivileged pod", [gateway("g", "ns", "{port: {name: a, number: 80, protocol: HTTP}, hosts: ['*']}",
                                                     "{port: {name: b, number: 8080, protocol: HTTP}, hosts: ['*']}")],
     {"UNPRIVILEGED_POD": "true"}, ["0.0.0.0_8080"]),
    ("privileged port on privileged pod when empty env var is set",
     [gateway("g", "ns", "{port: {name: a, number: 80, protocol: HTTP}, hosts: ['*']}",
              "{port: {name: b, number: 8080, protocol: HTTP}, hosts: ['*']}")],
     {"UNPRIVILEGED_POD": ""}, ["0.0.0.0_80", "0.0.0.0_8080"]),
    ("gateway with bind", [gateway("g", "ns", "{port: {name: a, number: 80, protocol: HTTP}, hosts: ['*']}",
                                   "{port: {name: b, number: 8080, protocol: HTTP}, hosts: [externalgatewayclient.com]}",
                                   "{port: {name: c, number: 8080, protocol: HTTP}, bind: 127.0.0.1, "
                                   "hosts: [internalmesh.svc.cluster.local]}")],
     None, ["0.0.0.0_80", "0.0.0.0_8080", "127.0.0.1_8080"]),
    ("gateway with simple and passthrough", [
        gateway("g", "ns", f"{{port: {{name: https, number: 443, protocol: HTTPS}}, hosts: ['*.example.com'], {SIMPLE}}}",
                "{port: {name: http, number: 80, protocol: HTTP}, hosts: [foo.example.com]}"),
        gateway("passthrough-gateway", "testns",
                f"{{port: {{name: https, number: 443, protocol: HTTPS}}, hosts: ['*.example.com'], {SIMPLE}}}",
                "{port: {name: tcp, number: 9443, protocol: TLS}, hosts: [barone.example.com], tls: {mode: PASSTHROUGH}}",
                "{port: {name: http, number: 80, protocol: HTTP}, hosts: [bar.example.com]}"),
        TLS_VS], None, ["0.0.0.0_443", "0.0.0.0_80", "0.0.0.0_9443"]),
    ("gateway with multiple http servers", [
        gateway("gateway1", "testns",
                f"{{port: {{name: https, number: 443, protocol: HTTPS}}, hosts: ['*.example.com'], {SIMPLE}}}",
                "{port: {name: http, number: 80, protocol: HTTP}, hosts: [foo.example.com]}"),
        gateway("gateway2", "testns",
                f"{{port: {{name: https, number: 443, protocol: HTTPS}}, hosts: ['*.exampleone.com'], {SIMPLE}}}",
                "{port: {name: http, number: 80, protocol: HTTP}, hosts: [bar.example.com]}")],
     None, ["0.0.0.0_443", "0.0.0.0_80"]),
    ("gateway with multiple TLS HTTPS TCP servers", [
        gateway("gateway1", "testns",
                f"{{port: {{name: tls, number: 443, protocol: TLS}}, hosts: ['*.example.com'], {SIMPLE}}}",
                f"{{port: {{name: https, number: 443, protocol: HTTPS}}, hosts: [https.example.com], {SIMPLE}}}",
                "{port: {name: tcp, number: 9443, protocol: TCP}, hosts: [tcp.example.com]}"),
        gateway("gateway2", "testns",
                f"{{port: {{name: https, number: 443, protocol: HTTPS}}, hosts: ['*.exampleone.com'], {SIMPLE}}}",
                f"{{port: {{name: tls, number: 443, protocol: TLS}}, hosts: ['*.exampleone.com'], {SIMPLE}}}"),
        TCP_VS], None, ["0.0.0.0_443", "0.0.0.0_9443"]),
    ("gateway with multiple TCP/HTTPS servers with bind", [
        gateway("gateway1", "testns", "{port: {name: tcp, number: 8000, protocol: TCP}, hosts: ['*'], bind: 10.0.0.1}"),
        gateway("gateway2", "testns", "{port: {name: tcp, number: 8000, protocol: TCP}, hosts: ['*'], bind: 10.0.0.2}"),
        gateway("gateway3", "testns",
                f"{{port: {{name: https, number: 8000, protocol: HTTPS}}, hosts: ['*'], bind: 10.0.0.3, {SIMPLE}}}"),
        tcp_any("t1", "gateway1", 8000), tcp_any("t2", "gateway2", 8000), http_any("h3", "gateway3")],
     None, ["10.0.0.1_8000", "10.0.0.2_8000", "10.0.0.3_8000"]),
    ("gateway with HTTPS/GRPC servers with bind", [
        gateway("gateway1", "testns",
                f"{{port: {{name: https, number: 443, protocol: HTTPS}}, hosts: ['*'], bind: 10.0.0.1, {SIMPLE}}}"),
        gateway("gateway2", "testns", "{port: {name: grpc, number: 443, protocol: GRPC}, hosts: ['*'], bind: 10.0.0.2}"),
        gateway("gateway3", "testns", "{port: {name: grpc, number: 443, protocol: GRPC}, hosts: [grpc.example.org]}"),
        http_any("h1", "gateway1"), http_any("h2", "gateway2"), http_any("h3", "gateway3", "grpc.example.org")],
     None, ["0.0.0.0_443", "10.0.0.1_443", "10.0.0.2_443"]),
    ("gateway with HTTPS/TCP invalid configuration", [
        gateway("gateway1", "testns",
                f"{{port: {{name: https, number: 443, protocol: HTTPS}}, hosts: ['*.1.example.com'], {SIMPLE}}}",
                "{port: {name: tcp, number: 443, protocol: TCP}, hosts: ['*.1.example.com']}"),
        gateway("gateway2", "testns",
                f"{{port: {{name: https, number: 443, protocol: HTTPS}}, hosts: ['*.2.example.com'], {SIMPLE}}}",
                "{port: {name: tcp, number: 443, protocol: TCP}, hosts: ['*.2.example.com']}"),
        tcp_any("t1", "gateway1", 0).replace("match: [{port: 0}]\n    ", ""),
        tcp_any("t2", "gateway2", 0).replace("match: [{port: 0}]\n    ", "")],
     None, ["0.0.0.0_443"]),
    ("gateway with multiple HTTPS servers with bind and same host", [
        gateway("gateway1", "testns",
                f"{{port: {{name: tcp, number: 443, protocol: HTTPS}}, hosts: ['*'], bind: 10.0.0.1, {SIMPLE}}}"),
        gateway("gateway2", "testns",
                f"{{port: {{name: tcp, number: 443, protocol: HTTPS}}, hosts: ['*'], bind: 10.0.0.2, {SIMPLE}}}"),
        tcp_any("t1", "gateway1", 9443), tcp_any("t2", "gateway2", 9443)],
     None, ["10.0.0.1_443", "10.0.0.2_443"]),
]


@pytest.mark.parametrize(("docs", "metadata", "expected"), [pytest.param(d, m, e, id=n) for n, d, m, e in LISTENER_CASES])
def test_build_gateway_listeners(router: Callable[..., ProxyConfig], docs: list[str], metadata: dict[str, str] | None,
                                 expected: list[str]) -> None:
    config = router(*docs, metadata=metadata)
    assert listener_names(config) == expected
    names = {listener.name for listener in config.listeners}
    for listener in config.listeners:  # every chain of a listener is distinct, or Envoy refuses it
        matches_ = [chain.filter_chain_match.SerializeToString(deterministic=True) for chain in listener.filter_chains]
        assert len(matches_) == len(set(matches_)), listener.name
    assert names


# --- route configurations (TestGatewayHTTPRouteConfig) ------------------------------------------

HTTP_REDIRECT = gateway("gateway-redirect", "default",
                        "{port: {name: http, number: 80, protocol: HTTP}, hosts: [example.org], tls: {httpsRedirect: true}}")
HTTP_REDIRECT_NO_VS = gateway("gateway-redirect-noroutes", "default", "{port: {name: http, number: 80, protocol: HTTP}, "
                                                                      "hosts: [example.org], tls: {httpsRedirect: true}}")
HTTP_GATEWAY = gateway("gateway", "default", "{port: {name: http, number: 80, protocol: HTTP}, hosts: [example.org]}")
CASE_INSENSITIVE = gateway("case-insensitive-gateway", "default",
                           "{port: {name: http, number: 80, protocol: HTTP}, hosts: [Example.org]}")
HTTPS_GATEWAY = gateway("gateway-https", "default",
                        "{port: {name: http, number: 80, protocol: HTTP}, hosts: [Example.org], tls: {httpsRedirect: true}}",
                        "{port: {name: https, number: 443, protocol: HTTPS}, hosts: [example.org], tls: {mode: SIMPLE, "
                        "credentialName: c}}")
HTTPS_GATEWAY_REDIRECT = gateway("gateway-https", "default",
                                 "{port: {name: http, number: 80, protocol: HTTP}, hosts: [example.org], "
                                 "tls: {httpsRedirect: true}}",
                                 "{port: {name: https, number: 443, protocol: HTTPS}, hosts: [example.org], "
                                 "tls: {httpsRedirect: true, mode: SIMPLE, credentialName: c}}")
WILDCARD_GATEWAY = gateway("gateway", "default", "{port: {name: http, number: 80, protocol: HTTP}, hosts: ['*']}")
ROUTE = "  http:\n  - route: [{destination: {host: example.org, port: {number: 80}}}]"
VIRTUAL_SERVICE = vs("virtual-service", "default", f"  hosts: [example.org]\n  gateways: [gateway, gateway-redirect]\n{ROUTE}")
VIRTUAL_SERVICE_COPY = vs("virtual-service-copy", "default",
                          f"  hosts: [example.org]\n  gateways: [gateway, gateway-redirect]\n{ROUTE}")
VIRTUAL_SERVICE_CASE = vs("virtual-service-case-insensitive", "default",
                          f"  hosts: [Example.org]\n  gateways: [case-insensitive-gateway, gateway-redirect]\n{ROUTE}")
VIRTUAL_SERVICE_HTTPS = vs("virtual-service-https", "default", """  hosts: [example.org]
  gateways: [gateway-https]
  http:
  - match: [{port: 443}]
    route: [{destination: {host: example.default.svc.cluster.local, port: {number: 8080}}}]""")
VIRTUAL_SERVICE_WILDCARD = vs("virtual-service-wildcard", "default",
                              f"  hosts: ['*.org']\n  gateways: [gateway, gateway-redirect]\n{ROUTE}")

ROUTE_CASES = [
    ("404 when no services", [HTTP_GATEWAY], "http.80", {"blackhole:80": (["*"], 0)}, False),
    ("tls redirect without virtual services", [VIRTUAL_SERVICE, HTTP_REDIRECT_NO_VS], "http.80",
     {"example.org:80": (["example.org"], 0)}, True),
    ("virtual services with tls redirect", [VIRTUAL_SERVICE, HTTP_REDIRECT], "http.80",
     {"example.org:80": (["example.org"], 1)}, True),
    ("merging of virtual services when tls redirect is set", [VIRTUAL_SERVICE, VIRTUAL_SERVICE_COPY, HTTP_REDIRECT,
                                                              HTTP_GATEWAY], "http.80",
     {"example.org:80": (["example.org"], 4)}, True),
    ("merging of virtual services when tls redirect is set without VS", [VIRTUAL_SERVICE, VIRTUAL_SERVICE_COPY,
                                                                         HTTP_GATEWAY, HTTP_REDIRECT_NO_VS], "http.80",
     {"example.org:80": (["example.org"], 2)}, True),
    ("add a route for a virtual service", [VIRTUAL_SERVICE, HTTP_GATEWAY], "http.80",
     {"example.org:80": (["example.org"], 1)}, False),
    ("duplicate virtual service should merge", [VIRTUAL_SERVICE, VIRTUAL_SERVICE_COPY, HTTP_GATEWAY], "http.80",
     {"example.org:80": (["example.org"], 2)}, False),
    ("duplicate virtual service case insensitive", [VIRTUAL_SERVICE, VIRTUAL_SERVICE_CASE, HTTP_GATEWAY,
                                                    CASE_INSENSITIVE], "http.80",
     {"example.org:80": (["example.org"], 2)}, False),
    ("duplicate by wildcard should merge", [VIRTUAL_SERVICE, VIRTUAL_SERVICE_WILDCARD, HTTP_GATEWAY], "http.80",
     {"example.org:80": (["example.org"], 2)}, False),
    ("wildcard virtual service", [VIRTUAL_SERVICE_WILDCARD, WILDCARD_GATEWAY], "http.80",
     {"*.org:80": (["*.org"], 1)}, False),
    ("http redirection not working when virtualservice not match http port (443)", [VIRTUAL_SERVICE_HTTPS, HTTPS_GATEWAY],
     "https.443.https.gateway-https.default", {"example.org:443": (["example.org"], 1)}, False),
    ("http redirection not working when virtualservice not match http port (80)", [VIRTUAL_SERVICE_HTTPS, HTTPS_GATEWAY],
     "http.80", {"example.org:80": (["example.org"], 0)}, True),
    ("http & https redirection not working when virtualservice not match http port (443)",
     [VIRTUAL_SERVICE_HTTPS, HTTPS_GATEWAY_REDIRECT], "https.443.https.gateway-https.default",
     {"example.org:443": (["example.org"], 1)}, True),
    ("http & https redirection not working when virtualservice not match http port (80)",
     [VIRTUAL_SERVICE_HTTPS, HTTPS_GATEWAY_REDIRECT], "http.80", {"example.org:80": (["example.org"], 0)}, True),
]


def route_config(config: ProxyConfig, name: str) -> route_pb2.RouteConfiguration:
    found = [route for route in config.routes if route.name == name]
    assert found, f"{name} not in {[r.name for r in config.routes]}"
    return found[0]


@pytest.mark.parametrize(("docs", "name", "expected", "redirect"),
                         [pytest.param(d, n, e, r, id=i) for i, d, n, e, r in ROUTE_CASES])
def test_gateway_http_route_config(router: Callable[..., ProxyConfig], docs: list[str], name: str,
                                   expected: dict[str, tuple[list[str], int]], redirect: bool) -> None:
    routes = route_config(router(*docs), name)
    assert routes.max_direct_response_body_size_bytes.value == 1024 * 1024
    assert routes.validate_clusters.value is False and routes.ignore_port_in_host_matching
    got = {vhost.name: (list(vhost.domains), len(vhost.routes)) for vhost in routes.virtual_hosts}
    assert got == expected
    for vhost in routes.virtual_hosts:
        assert vhost.include_request_attempt_count == (vhost.name != "blackhole:80")
        assert (vhost.require_tls == rc.VirtualHost.ALL) == redirect


def test_a_route_name_no_server_has_gets_an_empty_configuration(router: Callable[..., ProxyConfig]) -> None:
    from meshctl.generate.gateway.routes import gateway_route_configuration
    from meshctl.model.gateway import MergedGateway

    config = gateway_route_configuration(None, MergedGateway(), "http.81")  # type: ignore[arg-type]
    expected = route_pb2.RouteConfiguration(name="http.81")
    expected.validate_clusters.value = False
    assert config == expected


# --- calls through the generated config (gateway_simulation_test.go) ----------------------------

@dataclass(frozen=True)
class Result:
    """What a simulated call meets: Istio's simulation.Result fields, or its error."""

    error: str = ""
    listener: str = ""
    route_config: str = ""
    virtual_host: str = ""
    cluster: str = ""


def call(config: ProxyConfig, port: int, host: str = "", path: str = "/", sni: str = "") -> Result:
    """Follow a request as Envoy would, for the shapes these tests use: the listener on `port`
    (any bind), the filter chain by SNI (exact or `*.` suffix), then tcp_proxy's cluster, or the
    route configuration, the virtual host by domain and the first route by path."""
    listeners = [listener for listener in config.listeners if listener.address.socket_address.port_value == port]
    if not listeners:
        return Result(error="no listener")
    listener = listeners[0]
    chains = [c for c in listener.filter_chains if _sni_matches(list(c.filter_chain_match.server_names), sni)]
    if len(chains) > 1 and len({c.filter_chain_match.SerializeToString() for c in chains}) < len(chains):
        return Result(error="multiple filter chains", listener=listener.name)
    if not chains:
        return Result(error="no filter chain", listener=listener.name)
    chain = sorted(chains, key=lambda c: not c.filter_chain_match.server_names)[0]
    head = chain.filters[-1]
    if head.name == "envoy.filters.network.tcp_proxy":
        proxy = tcp_proxy_pb2.TcpProxy()
        head.typed_config.Unpack(proxy)
        return Result(listener=listener.name, cluster=proxy.cluster)
    manager = hcm_pb2.HttpConnectionManager()
    head.typed_config.Unpack(manager)
    routes = route_config(config, manager.rds.route_config_name)
    found = Result(listener=listener.name, route_config=routes.name)
    vhost = _virtual_host(routes, host)
    if vhost is None:
        return replace(found, error="no virtual host")
    found = replace(found, virtual_host=vhost.name)
    if vhost.require_tls == rc.VirtualHost.ALL and not sni:
        return replace(found, error="tls redirect")
    for route in vhost.routes:
        if _path_matches(route.match, path):
            return replace(found, cluster=route.route.cluster)
    return replace(found, error="no route")


def _sni_matches(names: list[str], sni: str) -> bool:
    return not names or any(name == sni or (name.startswith("*.") and sni.endswith(name[1:])) for name in names)


def _virtual_host(routes: route_pb2.RouteConfiguration, host: str) -> rc.VirtualHost | None:
    exact = [v for v in routes.virtual_hosts if host in v.domains]
    if exact:
        return exact[0]
    wild = [(len(d), v) for v in routes.virtual_hosts for d in v.domains if d != "*" and matches(d, host)]
    if wild:
        return max(wild, key=lambda pair: pair[0])[1]
    return next((v for v in routes.virtual_hosts if "*" in v.domains), None)


def _path_matches(match: rc.RouteMatch, path: str) -> bool:
    which = match.WhichOneof("path_specifier")
    if which == "prefix":
        return path.startswith(match.prefix)
    if which == "path":
        return path == match.path
    if which == "path_separated_prefix":
        prefix = match.path_separated_prefix
        return path == prefix or path.startswith(prefix + "/")
    raise AssertionError(f"{which} matches are not simulated")


HTTP_SERVER = "{port: {number: 80, name: http, protocol: HTTP}, hosts: [foo.bar]}"
TCP_SERVER = "{port: {number: 80, name: tcp, protocol: TCP}, hosts: [foo.bar]}"
TLS_SERVER = "{hosts: [./*], port: {name: https-ingress, number: 443, protocol: HTTPS}, " \
             "tls: {credentialName: sds-credential, mode: SIMPLE}}"
SIMPLE_ROUTE = vs("vs", "default", """  hosts: [example.com]
  gateways: [gateway]
  http:
  - match: [{uri: {prefix: /}}]
    route: [{destination: {host: b}}]""")
FQDN = ".default.svc.cluster.local"

SIMULATIONS = [
    ("TestHTTPGateway/no virtual services", [gateway("default", "default", HTTP_SERVER)], [
        ((80, "foo.bar", "/"), Result(error="no route", listener="0.0.0.0_80", route_config="http.80",
                                      virtual_host="blackhole:80")),
        ((81, "foo.bar", "/"), Result(error="no listener")),
    ]),
    ("TestHTTPGateway/simple http and virtual service", [
        gateway("gateway", "default", HTTP_SERVER),
        vs("bookinfo", "default", """  hosts: ["*"]
  gateways: [gateway]
  http:
  - match: [{uri: {exact: /productpage}}]
    route: [{destination: {host: productpage, port: {number: 9080}}}]""")], [
        ((80, "foo.bar", "/"), Result(error="no route", listener="0.0.0.0_80", route_config="http.80",
                                      virtual_host="foo.bar:80")),
        ((80, "bad.bar", "/"), Result(error="no virtual host", listener="0.0.0.0_80", route_config="http.80")),
        ((80, "foo.bar", "/productpage"), Result(listener="0.0.0.0_80", route_config="http.80",
                                                 virtual_host="foo.bar:80",
                                                 cluster=f"outbound|9080||productpage{FQDN}")),
    ]),
    ("TestHTTPGateway/virtual service merging", [
        gateway("gateway", "default", "{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*.example.com']}"),
        vs("a", "default", "  hosts: [a.example.com]\n  gateways: [gateway]\n  http:\n  - match: [{uri: {prefix: /}}]\n"
                           "    route: [{destination: {host: a, port: {number: 80}}}]"),
        vs("b", "default", "  hosts: [b.example.com]\n  gateways: [gateway]\n  http:\n  - match: [{uri: {prefix: /}}]\n"
                           "    route: [{destination: {host: b, port: {number: 80}}}]")], [
        ((80, "a.example.com", "/"), Result(listener="0.0.0.0_80", route_config="http.80",
                                            virtual_host="a.example.com:80", cluster=f"outbound|80||a{FQDN}")),
        ((80, "b.example.com", "/"), Result(listener="0.0.0.0_80", route_config="http.80",
                                            virtual_host="b.example.com:80", cluster=f"outbound|80||b{FQDN}")),
        ((80, "c.example.com", "/"), Result(error="no virtual host", listener="0.0.0.0_80", route_config="http.80")),
    ]),
    ("TestHTTPGateway/httpsRedirect without routes", [
        gateway("gateway", "default", "{port: {number: 80, name: http, protocol: HTTP}, hosts: [example.com], "
                                      "tls: {httpsRedirect: true}}")], [
        ((80, "example.com", "/"), Result(error="tls redirect", listener="0.0.0.0_80", route_config="http.80",
                                          virtual_host="example.com:80")),
    ]),
    ("TestHTTPGateway/httpsRedirect with routes", [
        gateway("gateway", "default", "{port: {number: 80, name: http, protocol: HTTP}, hosts: [example.com], "
                                      "tls: {httpsRedirect: true}}"), SIMPLE_ROUTE], [
        ((80, "example.com", "/"), Result(error="tls redirect", listener="0.0.0.0_80", route_config="http.80",
                                          virtual_host="example.com:80")),
    ]),
    ("TestHTTPGateway/mixed httpsRedirect with routes", [
        gateway("gateway", "default", "{port: {number: 80, name: http, protocol: HTTP}, hosts: [example.com], "
                                      "tls: {httpsRedirect: true}}"),
        gateway("gateway2", "default", "{port: {number: 80, name: http, protocol: HTTP}, hosts: [example.com]}"),
        SIMPLE_ROUTE], [
        ((80, "example.com", "/"), Result(error="tls redirect", listener="0.0.0.0_80", route_config="http.80",
                                          virtual_host="example.com:80")),
    ]),
    ("TestHTTPGateway/httpsRedirect on https", [
        gateway("gateway", "default", "{port: {number: 443, name: https, protocol: HTTPS}, hosts: [example.com], "
                                      "tls: {httpsRedirect: true, mode: SIMPLE, credentialName: test}}"),
        SIMPLE_ROUTE], [
        ((443, "example.com", "/", "example.com"), Result(listener="0.0.0.0_443", virtual_host="example.com:443",
                                                          route_config="https.443.https.gateway.default",
                                                          cluster=f"outbound|443||b{FQDN}")),
    ]),
    ("TestGatewayConflicts/duplicate cross namespace gateway collision", [
        gateway("gateway", "istio-system", TCP_SERVER), gateway("gateway", "alpha", TCP_SERVER),
        vs("bookinfo", "default", """  hosts: ["*"]
  gateways: [istio-system/gateway]
  tcp:
  - route: [{destination: {host: productpage, port: {number: 9080}}}]""")], [
        ((80,), Result(error="no listener")),  # Istio's issue 21394: alpha/gateway wins port 80, with no route
    ]),
    ("TestGatewayConflicts/duplicate cross namespace gateway collision - selected first", [
        gateway("gateway", "istio-system", TCP_SERVER), gateway("gateway", "zeta", TCP_SERVER),
        vs("bookinfo", "default", """  hosts: ["*"]
  gateways: [istio-system/gateway]
  tcp:
  - route: [{destination: {host: productpage, port: {number: 9080}}}]""")], [
        ((80,), Result(listener="0.0.0.0_80", cluster=f"outbound|9080||productpage{FQDN}")),
    ]),
    ("TestGatewayConflicts/duplicate tls gateway", [
        gateway("default", "istio-system", TLS_SERVER), gateway("default", "default", TLS_SERVER)], [
        # Istio's issue 24638: two match-all chains, which Envoy refuses
        ((443, "foo.bar", "/", "foo.bar"), Result(error="multiple filter chains", listener="0.0.0.0_443")),
    ]),
    ("TestGatewayConflicts/duplicate tls virtual service", [
        gateway("ingressgateway", "istio-system", "{hosts: ['*.example.com'], port: {name: https, number: 443, "
                                                  "protocol: HTTPS}, tls: {mode: PASSTHROUGH}}"),
        *(vs(name, "default", """  gateways: [istio-system/ingressgateway]
  hosts: [mysite.example.com]
  tls:
  - match: [{port: 443, sniHosts: [mysite.example.com]}]
    route: [{destination: {host: mysite.default.svc.cluster.local, port: {number: 443}}}]""") for name in ("vs1", "vs2"))],
     [((443, "mysite.example.com", "/", "mysite.example.com"),
       Result(listener="0.0.0.0_443", cluster="outbound|443||mysite.default.svc.cluster.local"))]),
    ("TestGatewayConflicts/multiple protocols on a port - tcp first", [
        gateway("alpha", "default", TCP_SERVER), gateway("beta", "default", HTTP_SERVER)], [
        ((80,), Result(error="no listener")),  # TCP takes the port, and no VirtualService routes TCP
    ]),
    ("TestGatewayConflicts/multiple protocols on a port - http first", [
        gateway("beta", "default", TCP_SERVER), gateway("alpha", "default", HTTP_SERVER)], [
        ((80, "foo.bar", "/"), Result(error="no route", listener="0.0.0.0_80", route_config="http.80",
                                      virtual_host="blackhole:80")),
    ]),
    ("TestGatewayConflicts/multiple wildcards with virtual service disambiguator", [
        gateway("alpha", "default", "{hosts: [ns-1/*.example.com], port: {name: http, number: 80, protocol: HTTP}}"),
        gateway("beta", "default", "{hosts: [ns-2/*.example.com], port: {name: http, number: 80, protocol: HTTP}}"),
        vs("default", "ns-1", "  hosts: [ns-1.example.com]\n  gateways: [default/alpha]\n  http:\n"
                              "  - route: [{destination: {host: echo}}]"),
        vs("default", "ns-2", "  hosts: [ns-2.example.com]\n  gateways: [default/beta]\n  http:\n"
                              "  - route: [{destination: {host: echo}}]")], [
        ((80, "ns-1.example.com", "/"), Result(listener="0.0.0.0_80", route_config="http.80",
                                               virtual_host="ns-1.example.com:80",
                                               cluster="outbound|80||echo.ns-1.svc.cluster.local")),
        ((80, "ns-2.example.com", "/"), Result(listener="0.0.0.0_80", route_config="http.80",
                                               virtual_host="ns-2.example.com:80",
                                               cluster="outbound|80||echo.ns-2.svc.cluster.local")),
    ]),
    ("TestGatewayConflicts/multiple virtual services that should become separate vhosts", [
        gateway("public-gw", "istio-system", "{port: {number: 80, name: http, protocol: HTTP}, "
                                             "hosts: [foo.example.com, bar.example.com]}"),
        vs("foobar-vs", "default", """  hosts: [foo.example.com, bar.example.com]
  gateways: [istio-system/public-gw]
  http:
  - name: foobar
    match: [{uri: {prefix: /1}}, {uri: {prefix: /2}}, {uri: {prefix: /3}}]
    route: [{destination: {host: echo-foobar}}]""", "2010-01-01T00:00:00Z"),
        vs("foo-vs", "default", """  gateways: [istio-system/public-gw]
  hosts: [foo.example.com]
  http:
  - name: foo
    match: [{uri: {prefix: /foo}}]
    route: [{destination: {host: echo-foo, port: {number: 80}}}]""", "2015-01-01T00:00:00Z"),
        vs("bar-vs", "default", """  gateways: [istio-system/public-gw]
  hosts: [bar.example.com]
  http:
  - name: bar
    match: [{uri: {prefix: /bar}}]
    route: [{destination: {host: echo-bar, port: {number: 80}}}]""", "2020-01-01T00:00:00Z")], [
        ((80, "foo.example.com", "/1"), Result(listener="0.0.0.0_80", route_config="http.80",
                                               virtual_host="foo.example.com:80", cluster=f"outbound|80||echo-foobar{FQDN}")),
        ((80, "foo.example.com", "/foo"), Result(listener="0.0.0.0_80", route_config="http.80",
                                                 virtual_host="foo.example.com:80", cluster=f"outbound|80||echo-foo{FQDN}")),
        ((80, "bar.example.com", "/bar"), Result(listener="0.0.0.0_80", route_config="http.80",
                                                 virtual_host="bar.example.com:80", cluster=f"outbound|80||echo-bar{FQDN}")),
    ]),
]


def _target_port_vs(*gateway_names: str) -> str:
    gateways = ", ".join(gateway_names)
    return vs("a", "default", f"""  hosts: [example.com]
  gateways: [{gateways}]
  http:
  - match: [{{uri: {{prefix: /}}}}]
    route: [{{destination: {{host: a, port: {{number: 80}}}}}}]""") + vs("b", "default", f"""  hosts: [example.com]
  gateways: [{gateways}]
  http:
  - match: [{{uri: {{prefix: /}}}}]
    route: [{{destination: {{host: b, port: {{number: 8081}}}}}}]""")


EXAMPLE_80 = "{port: {number: 80, name: http, protocol: HTTP}, hosts: [example.com]}"
WILD_A = vs("a", "default", """  hosts: ['*.example.com']
  gateways: [istio-system/gateway]
  http:
  - match: [{uri: {prefix: /}}]
    route: [{destination: {host: a, port: {number: 80}}}]""")
INGRESS = "istio-ingressgateway.istio-system.svc.cluster.local"


def _per_host(name: str, host: str) -> str:
    return vs(name, "default", f"""  hosts: [{host}]
  gateways: [istio-system/gateway]
  http:
  - match: [{{uri: {{prefix: /}}}}]
    route: [{{destination: {{host: a, port: {{number: 80}}}}}}]""")


def _servers(*ports: int) -> list[str]:
    return [f"{{port: {{number: {p}, name: http-{p}, protocol: HTTP}}, hosts: ['{p}.example.com']}}" for p in ports]


SIMULATIONS += [
    ("TestDisablePortTranslation/multiple target port, target port first", [
        gateway("gateway80", "default", EXAMPLE_80),
        gateway("gateway8081", "default", "{port: {number: 8081, name: http, protocol: HTTP}, hosts: [example.com]}"),
        entry("service-instance", "a.example.com", 80, 8081,
              labels='experimental.istio.io/disable-gateway-port-translation: "true"'),
        entry("service-instance-2", "b.example.com", 80, 8080), _target_port_vs("gateway80", "gateway8081")], [
        ((8080, "example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                       route_config="http.8080", virtual_host="example.com:80")),
        ((8081, "example.com"), Result(listener="0.0.0.0_8081", cluster=f"outbound|80||a{FQDN}",
                                       route_config="http.8081", virtual_host="example.com:8081")),
    ]),
    ("TestDisablePortTranslation/multiple target port, service port first", [
        gateway("gateway80", "default", EXAMPLE_80),
        gateway("gateway8081", "default", "{port: {number: 8081, name: http, protocol: HTTP}, hosts: [example.com]}"),
        entry("service-instance", "b.example.com", 80, 8081,
              labels='experimental.istio.io/disable-gateway-port-translation: "true"'),
        entry("service-instance-2", "a.example.com", 80, 8080), _target_port_vs("gateway80", "gateway8081")], [
        ((8080, "example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                       route_config="http.8080", virtual_host="example.com:80")),
        ((8081, "example.com"), Result(listener="0.0.0.0_8081", cluster=f"outbound|80||a{FQDN}",
                                       route_config="http.8081", virtual_host="example.com:8081")),
    ]),
    ("TestTargetPort/basic", [
        gateway("gateway80", "istio-system", EXAMPLE_80, service=INGRESS),
        gateway("gateway81", "istio-system", "{port: {number: 8080, name: http, protocol: HTTP}, hosts: [example.com]}",
                service=INGRESS),
        entry("service-instance", INGRESS, 80, 8080),
        vs("a", "default", """  hosts: [example.com]
  gateways: [istio-system/gateway80, istio-system/gateway81]
  http:
  - match: [{uri: {prefix: /}}]
    route: [{destination: {host: a, port: {number: 80}}}]""")], [
        ((8080, "example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                       route_config="http.8080", virtual_host="example.com:80")),
    ]),
    ("TestTargetPort/multiple target port", [
        gateway("gateway80", "istio-system", EXAMPLE_80, service="ingress1.istio-system.svc.cluster.local"),
        gateway("gateway81", "istio-system", EXAMPLE_80, service="ingress2.istio-system.svc.cluster.local"),
        entry("service-instance", "ingress1.istio-system.svc.cluster.local", 80, 8080),
        entry("service-instance-2", "ingress2.istio-system.svc.cluster.local", 80, 8081),
        _target_port_vs("istio-system/gateway80", "istio-system/gateway81")], [
        ((8080, "example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                       route_config="http.8080", virtual_host="example.com:80")),
        ((8081, "example.com"), Result(listener="0.0.0.0_8081", cluster=f"outbound|80||a{FQDN}",
                                       route_config="http.8081", virtual_host="example.com:80")),
    ]),
    ("TestGatewayServices/single service", [
        gateway("gateway", "istio-system", *_servers(80, 82), service=INGRESS),
        entry("service-instance", INGRESS, 80, 8080), WILD_A], [
        ((8080, "80.example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                          route_config="http.8080", virtual_host="80.example.com:80")),
        ((82, "81.example.com"), Result(error="no listener")),  # a Service reference has no fallback port
    ]),
    ("TestGatewayServices/wrong namespace", [
        gateway("gateway", "istio-system", *_servers(80), service="istio-ingressgateway.not-istio-system.svc.cluster.local"),
        entry("service-instance", "istio-ingressgateway.not-istio-system.svc.cluster.local", 80, 80).replace(
            "namespace: istio-system", "namespace: not-istio-system")], [
        ((80, "80.example.com"), Result(error="no listener")),  # the Service is in another namespace
    ]),
    ("TestGatewayServices/multiple services", [
        gateway("gateway", "istio-system", *_servers(80, 81, 82), service=f"{INGRESS},ingress.com"),
        entry("service-instance", INGRESS, 80, 8080), entry("service-instance2", "ingress.com", 81, 8081), WILD_A], [
        ((8080, "80.example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                          route_config="http.8080", virtual_host="80.example.com:80")),
        ((8081, "81.example.com"), Result(listener="0.0.0.0_8081", cluster=f"outbound|80||a{FQDN}",
                                          route_config="http.8081", virtual_host="81.example.com:81")),
        ((82, "81.example.com"), Result(error="no listener")),
    ]),
    ("TestGatewayServices/multiple overlapping services", [
        gateway("gateway", "istio-system", *_servers(80, 81), service=f"{INGRESS},ingress.com"),
        entry("service-instance", INGRESS, 80, 8080), entry("service-instance2", "ingress.com", 81, 8080),
        _per_host("a-80", "80.example.com"), _per_host("a-81", "81.example.com")], [
        ((8080, "80.example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                          route_config="http.8080", virtual_host="80.example.com:80")),
        ((8080, "81.example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                          route_config="http.8080", virtual_host="81.example.com:81")),
    ]),
    ("TestGatewayServices/multiple overlapping services wildcard", [
        gateway("gateway", "istio-system", *_servers(80, 81), service=f"{INGRESS},ingress.com"),
        entry("service-instance", INGRESS, 80, 8080), entry("service-instance2", "ingress.com", 81, 8080),
        _per_host("a-80", "80.example.com"), _per_host("a-81", "81.example.com")], [
        ((8080, "80.example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                          route_config="http.8080", virtual_host="80.example.com:80")),
        ((8080, "81.example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                          route_config="http.8080", virtual_host="81.example.com:81")),
    ]),
    ("TestGatewayServices/no match selector", [
        gateway("gateway", "istio-system", *_servers(80, 82)), entry("service-instance", INGRESS, 80, 8080), WILD_A], [
        ((8080, "80.example.com"), Result(listener="0.0.0.0_8080", cluster=f"outbound|80||a{FQDN}",
                                          route_config="http.8080", virtual_host="80.example.com:80")),
        ((82, "82.example.com"), Result(listener="0.0.0.0_82", cluster=f"outbound|80||a{FQDN}",
                                        route_config="http.82", virtual_host="82.example.com:82")),
    ]),
]


@pytest.mark.parametrize(("docs", "calls"), [pytest.param(d, c, id=n) for n, d, c in SIMULATIONS])
def test_gateway_simulation(router: Callable[..., ProxyConfig], docs: list[str],
                            calls: list[tuple[tuple[object, ...], Result]]) -> None:
    config = router(*docs)
    for request, expected in calls:
        got = call(config, *request)  # type: ignore[arg-type]
        for name in ("error", "listener", "route_config", "virtual_host", "cluster"):
            wanted = getattr(expected, name)
            if wanted or name == "error":
                assert getattr(got, name) == wanted, (request, got)


def test_overlapping_sni_match_routes_a_name_once(router: Callable[..., ProxyConfig]) -> None:
    """TestGatewayServices/overlapping SNI match: servers `example.com` and `*` on one port, both
    passed through, and one VirtualService for example.com that both bind. Its TLS rule makes a
    chain for the first server; for the second it would repeat SNI example.com on the same
    listener, which Envoy refuses, so it is skipped (Istio's CheckDuplicates), with a warning."""
    config = router(gateway("gw", "istio-system",
                            "{hosts: [example.com], port: {name: example, number: 443, protocol: TLS}, "
                            "tls: {mode: PASSTHROUGH}}",
                            "{hosts: ['*'], port: {name: wildcard-tls, number: 443, protocol: HTTPS}, "
                            "tls: {mode: PASSTHROUGH}}", service=INGRESS),
                    vs("example", "istio-system", """  gateways: [gw]
  hosts: [example.com]
  tls:
  - match: [{sniHosts: [example.com]}]
    route: [{destination: {host: example}}]"""),
                    entry("service-instance", INGRESS, 443, 443))
    listener = next(listener for listener in config.listeners if listener.name == "0.0.0.0_443")
    assert [list(c.filter_chain_match.server_names) for c in listener.filter_chains] == [["example.com"]]
    assert call(config, 443, sni="example.com").cluster == "outbound|443||example.istio-system.svc.cluster.local"
    assert any("SNI example.com is already routed" in warning for warning in config.warnings)


def test_listeners_are_standard_envoy(router: Callable[..., ProxyConfig]) -> None:
    """What explain and the tables read: a gateway listener is a plain Envoy listener."""
    config = router(gateway("g", "ns", HTTP_SERVER))
    listener: listener_pb2.Listener = config.listeners[0]
    assert listener.name == "0.0.0.0_80" and listener.traffic_direction == 2  # OUTBOUND
    assert not listener.HasField("bind_to_port") and not listener.HasField("listener_filters_timeout")


def test_redirected_virtual_host_whole(router: Callable[..., ProxyConfig]) -> None:
    """TestGatewayHTTPRouteConfig/virtual services with tls redirect, the whole message."""
    from google.protobuf import struct_pb2

    from meshctl.generate.httproute import default_retry_policy

    routes = route_config(router(VIRTUAL_SERVICE, HTTP_REDIRECT), "http.80")
    route = rc.Route(match=rc.RouteMatch(prefix="/"), decorator=rc.Decorator(operation="example.org:80/*"))
    route.metadata.filter_metadata["istio"].CopyFrom(struct_pb2.Struct(fields={"config": struct_pb2.Value(
        string_value="/apis/networking.istio.io/v1/namespaces/default/virtual-service/virtual-service")}))
    route.route.cluster = "outbound|80||example.org"
    route.route.timeout.SetInParent()
    route.route.max_stream_duration.grpc_timeout_header_max.SetInParent()  # plain Envoy: not max_grpc_timeout
    route.route.retry_policy.CopyFrom(default_retry_policy())
    expected = route_pb2.RouteConfiguration(name="http.80", ignore_port_in_host_matching=True, virtual_hosts=[
        rc.VirtualHost(name="example.org:80", domains=["example.org"], routes=[route], require_tls=rc.VirtualHost.ALL,
                       include_request_attempt_count=True)])
    expected.validate_clusters.value = False
    expected.max_direct_response_body_size_bytes.value = 1024 * 1024
    assert routes == expected


def test_authorization_policies_of_the_gateway_guard_its_chains(router: Callable[..., ProxyConfig]) -> None:
    """Istio applies the AuthorizationPolicies selecting a gateway to its chains: RBAC (HTTP)
    first in every connection manager, network RBAC before every tcp_proxy."""
    policy = """---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{from: [{source: {ipBlocks: [10.9.0.0/16]}}]}]
"""
    config = router(policy, gateway("g", "istio-system", HTTP_SERVER,
                                    "{port: {name: tcp, number: 9000, protocol: TCP}, hosts: ['*']}"),
                    tcp_any("tcp", "g", 9000).replace("testns/g", "istio-system/g"))
    listeners = {listener.name: listener for listener in config.listeners}
    (http_chain,) = listeners["0.0.0.0_80"].filter_chains
    manager = hcm_pb2.HttpConnectionManager()
    http_chain.filters[0].typed_config.Unpack(manager)
    assert [f.name for f in manager.http_filters][:2] == ["envoy.filters.http.rbac", "envoy.filters.http.grpc_stats"]
    (tcp_chain,) = listeners["0.0.0.0_9000"].filter_chains
    assert [f.name for f in tcp_chain.filters] == ["envoy.filters.network.rbac", "envoy.filters.network.tcp_proxy"]


def test_matches_naming_gateways_or_source_labels_apply_to_the_gateway_they_name(
        router: Callable[..., ProxyConfig]) -> None:
    """Istio's sourceMatchHTTP on a gateway: a match naming `gateways` applies when one is this
    gateway (its source labels then unread); otherwise its sourceLabels must be the gateway
    pod's. Matches for other gateways or other workloads are dropped from the route."""
    config = router(gateway("gw", "istio-system", "{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}"),
                    gateway("other", "istio-system", "{port: {number: 81, name: http, protocol: HTTP}, hosts: ['*']}"),
                    vs("routes", "istio-system", """  hosts: [example.com]
  gateways: [gw, other]
  http:
  - match: [{uri: {prefix: /this}, gateways: [gw]}]
    route: [{destination: {host: this}}]
  - match: [{uri: {prefix: /that}, gateways: [other]}]
    route: [{destination: {host: that}}]
  - match: [{uri: {prefix: /labelled}, sourceLabels: {istio: ingressgateway}}]
    route: [{destination: {host: labelled}}]
  - match: [{uri: {prefix: /sidecars}, sourceLabels: {app: reviews}}]
    route: [{destination: {host: sidecars}}]"""))
    assert call(config, 80, "example.com", "/this").cluster == "outbound|80||this.istio-system.svc.cluster.local"
    assert call(config, 80, "example.com", "/labelled").cluster == \
        "outbound|80||labelled.istio-system.svc.cluster.local"
    (host,) = route_config(config, "http.80").virtual_hosts
    assert [route.match.prefix for route in host.routes] == ["/this", "/labelled"]
    (other,) = route_config(config, "http.81").virtual_hosts
    assert [route.match.prefix for route in other.routes] == ["/that", "/labelled"]
