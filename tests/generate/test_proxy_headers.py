"""What a proxy's `proxyHeaders` change in its config, as Istio's GetProxyHeaders reads them.

A proxy runs with its own ProxyConfig (offline: the mesh's `defaultConfig` with its pod's
`proxy.istio.io/config` merged over it), else the mesh's. `server`: inbound and gateway
connection managers say `istio-envoy`, sidecar outbound ones leave Envoy's own; a custom value
applies to all; `disabled` leaves the name unset and passes the upstream's header through.
`requestId.disabled`: `generate_request_id: false`. `attemptCount.disabled`: virtual hosts of
outbound and gateway routes stop counting attempts (inbound ones never do).
`envoyDebugHeaders.disabled`: routers suppress their `x-envoy-*` headers. `forwardedClientCert`
and `setCurrentClientCertDetails`: the inbound XFCC mode and details (gateways take theirs from
gatewayTopology). `metadataExchangeHeaders: IN_MESH`: a sidecar's outbound metadata exchange
keeps its headers from clusters outside the mesh. Tables: model in, the whole
HttpConnectionManager or virtual host out (as the same proxy gets it without proxyHeaders,
with exactly the fields Istio changes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from meshctl.config.loader import load
from meshctl.generate.bootstrap import ads_bootstrap
from meshctl.generate.proxy import ProxyConfig, generate
from meshctl.model.meshconfig import mesh_config_text
from meshctl.model.node import parse_node
from meshctl.model.proxy import for_node
from meshctl.model.snapshot import MeshSnapshot, build_snapshot
from testsupport import BASE, INGRESS, changed, connection_manager

GATEWAY = "---\n" + INGRESS + """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ["*"]
  gateways: [web]
  http: [{route: [{destination: {host: reviews}}]}]
"""


def _pod(name: str, labels: str, proxy_headers: str, part: str = "proxyHeaders") -> str:
    """A pod whose `proxy.istio.io/config` sets `part` (its proxyHeaders, unless told) to
    `proxy_headers` (YAML flow), none when empty."""
    annotation = f"\n  annotations:\n    proxy.istio.io/config: |\n      {part}: {proxy_headers}" if proxy_headers else ""
    return f"""
---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: default
  labels: {labels}{annotation}
spec: {{containers: [{{name: c, image: c}}]}}
"""


def _snapshot(write_yaml: Callable[[str], Path], mesh: str, pods: str) -> MeshSnapshot:
    result = load([str(write_yaml(BASE + GATEWAY + pods))], "default")
    assert not result.problems, result.problems
    return build_snapshot(result.resources, mesh_config_text(mesh, "mesh.yaml") if mesh else None)


def _config(write_yaml: Callable[[str], Path], mesh: str, target: str, proxy_headers: str = "",
            part: str = "proxyHeaders") -> ProxyConfig:
    """The config of `target`: a deployment of BASE, or `tuned.default`, a ratings pod (it
    serves ratings:7000 and is a client of every service) whose annotation sets `proxy_headers`
    (or another `part` of its ProxyConfig)."""
    snapshot = _snapshot(write_yaml, mesh, _pod("tuned", "{app: ratings}", proxy_headers, part))
    return generate(snapshot, snapshot.proxy(target, istio_extensions=True))


ROUTER = "envoy.filters.http.router"
MX = "istio.metadata_exchange"

HCM_CASES: dict[str, tuple[str, str, str, str, tuple[str, ...], str]] = {
    # id: (mesh config, pod's proxyHeaders, target, listener, fields cleared, fields Istio sets)
    "outbound: server disabled passes the upstream's through": (
        "", "{server: {disabled: true}}", "tuned.default", "0.0.0.0_9080", (),
        "server_header_transformation: PASS_THROUGH"),
    "outbound: a custom server name": (
        "", "{server: {value: edge}}", "tuned.default", "0.0.0.0_9080", (), 'server_name: "edge"'),
    "outbound: request ids off": (
        "", "{requestId: {disabled: true}}", "tuned.default", "0.0.0.0_9080", (), "generate_request_id {}"),
    "sniffed outbound port: request ids off": (
        "", "{requestId: {disabled: true}}", "tuned.default", "10.96.0.60_7000", (), "generate_request_id {}"),
    "inbound: server disabled, istio-envoy gone": (
        "", "{server: {disabled: true}}", "tuned.default", "virtualInbound", ("server_name",),
        "server_header_transformation: PASS_THROUGH"),
    "inbound: a custom server name": (
        "", "{server: {value: edge}}", "tuned.default", "virtualInbound", (), 'server_name: "edge"'),
    "inbound: request ids off": (
        "", "{requestId: {disabled: true}}", "tuned.default", "virtualInbound", (), "generate_request_id {}"),
    "inbound: XFCC mode": (
        "", "{forwardedClientCert: SANITIZE_SET}", "tuned.default", "virtualInbound", (),
        "forward_client_cert_details: SANITIZE_SET"),
    "inbound: XFCC UNDEFINED keeps APPEND_FORWARD": (
        "", "{forwardedClientCert: UNDEFINED}", "tuned.default", "virtualInbound", (), ""),
    "inbound: XFCC details, unset ones at Istio's defaults": (
        "", "{setCurrentClientCertDetails: {subject: false, cert: true, chain: true}}", "tuned.default",
        "virtualInbound", ("set_current_client_cert_details",),
        "set_current_client_cert_details {subject {} cert: true chain: true dns: true uri: true}"),
    "mesh default reaches every proxy": (
        "defaultConfig: {proxyHeaders: {server: {value: edge}}}", "", "deploy/client.default", "0.0.0.0_9080", (),
        'server_name: "edge"'),
    "pod over mesh, field by field": (
        "defaultConfig: {proxyHeaders: {server: {value: edge}, requestId: {disabled: true}}}",
        "{server: {disabled: true}}", "tuned.default", "virtualInbound", ("server_name",),
        "server_header_transformation: PASS_THROUGH generate_request_id {}"),
    "gateway: server disabled": (
        "defaultConfig: {proxyHeaders: {server: {disabled: true}}}", "", "deploy/ingress.istio-system", "0.0.0.0_8080", ("server_name",),
        "server_header_transformation: PASS_THROUGH"),
    "gateway: XFCC is gatewayTopology's, not proxyHeaders'": (
        "defaultConfig: {proxyHeaders: {forwardedClientCert: APPEND_FORWARD}}", "", "deploy/ingress.istio-system",
        "0.0.0.0_8080", (), ""),
}


@pytest.mark.parametrize("mesh, headers, target, listener, cleared, added", HCM_CASES.values(), ids=list(HCM_CASES))
def test_connection_managers_take_the_proxys_headers(write_yaml: Callable[[str], Path], mesh: str, headers: str,
                                                     target: str, listener: str, cleared: tuple[str, ...],
                                                     added: str) -> None:
    plain = connection_manager(_config(write_yaml, "", target), listener)
    got = connection_manager(_config(write_yaml, mesh, target, headers), listener)
    assert got == changed(plain, added, cleared)


@pytest.mark.parametrize("target, listener, server", [
    ("deploy/client.default", "0.0.0.0_9080", ""),
    ("deploy/ratings.default", "virtualInbound", "istio-envoy"),
    ("deploy/ingress.istio-system", "0.0.0.0_8080", "istio-envoy"),
], ids=["sidecar outbound: Envoy's own", "inbound", "gateway"])
def test_server_names_by_listener_class(write_yaml: Callable[[str], Path], target: str, listener: str,
                                        server: str) -> None:
    manager = connection_manager(_config(write_yaml, "", target), listener)
    assert (manager.server_name, manager.server_header_transformation) == (server, hcm_pb2.HttpConnectionManager.OVERWRITE)
    assert not manager.HasField("generate_request_id")


def _filter(manager: hcm_pb2.HttpConnectionManager, name: str) -> hcm_pb2.HttpFilter:
    return next(f for f in manager.http_filters if f.name == name)


@pytest.mark.parametrize("target, listener", [
    ("tuned.default", "0.0.0.0_9080"), ("tuned.default", "virtualInbound"),
    ("deploy/ingress.istio-system", "0.0.0.0_8080"),
], ids=["outbound", "inbound", "gateway"])
def test_debug_headers_disabled_suppress_the_routers_envoy_headers(write_yaml: Callable[[str], Path], target: str,
                                                                   listener: str) -> None:
    mesh = "defaultConfig: {proxyHeaders: {envoyDebugHeaders: {disabled: true}}}"
    expected = hcm_pb2.HttpFilter(name=ROUTER)
    expected.typed_config.Pack(router_pb2.Router())
    assert _filter(connection_manager(_config(write_yaml, "", target), listener), ROUTER) == expected
    expected.typed_config.Pack(router_pb2.Router(suppress_envoy_headers=True))
    assert _filter(connection_manager(_config(write_yaml, mesh, target), listener), ROUTER) == expected


def _propagation(manager: hcm_pb2.HttpConnectionManager) -> dict[str, object]:
    """The metadata exchange filter's settings (a TypedStruct), as plain values."""
    from google.protobuf import json_format
    from udpa.type.v1 import typed_struct_pb2

    typed = typed_struct_pb2.TypedStruct()
    assert _filter(manager, MX).typed_config.Unpack(typed)
    return json_format.MessageToDict(typed.value)


@pytest.mark.parametrize("target, listener, skips", [
    ("tuned.default", "0.0.0.0_9080", True), ("tuned.default", "virtualInbound", False),
    ("deploy/ingress.istio-system", "0.0.0.0_8080", False),
], ids=["sidecar outbound skips external clusters", "inbound: unchanged", "gateway: unchanged"])
def test_metadata_exchange_in_mesh(write_yaml: Callable[[str], Path], target: str, listener: str, skips: bool) -> None:
    mesh = "defaultConfig: {proxyHeaders: {metadataExchangeHeaders: {mode: IN_MESH}}}"
    plain = _propagation(connection_manager(_config(write_yaml, "", target), listener))
    got = _propagation(connection_manager(_config(write_yaml, mesh, target), listener))
    expected = dict(plain)
    if skips:
        expected["upstream_propagation"] = [{"istio_headers": {"skip_external_clusters": True}}]
    assert got == expected


def _vhosts(config: ProxyConfig, route: str) -> list[rc.VirtualHost]:
    return list({item.name: item for item in config.routes}[route].virtual_hosts)


@pytest.mark.parametrize("mesh, headers, target, route", [
    ("", "{attemptCount: {disabled: true}}", "tuned.default", "9080"),
    ("defaultConfig: {proxyHeaders: {attemptCount: {disabled: true}}}", "", "deploy/client.default", "9080"),
    ("", "{attemptCount: {disabled: true}}", "tuned.default", "ratings.default.svc.cluster.local:7000"),
    ("defaultConfig: {proxyHeaders: {attemptCount: {disabled: true}}}", "", "deploy/ingress.istio-system", "http.8080"),
], ids=["outbound, pod", "outbound, mesh", "sniffed single service", "gateway"])
def test_attempt_count_disabled_leaves_virtual_hosts_uncounted(write_yaml: Callable[[str], Path], mesh: str,
                                                               headers: str, target: str, route: str) -> None:
    plain = _vhosts(_config(write_yaml, "", target), route)
    assert plain and all(vhost.include_request_attempt_count for vhost in plain)
    got = _vhosts(_config(write_yaml, mesh, target, headers), route)
    assert got == [changed(vhost, "", ("include_request_attempt_count",)) for vhost in plain]


def test_inbound_virtual_hosts_never_count_attempts(write_yaml: Callable[[str], Path]) -> None:
    inbound = connection_manager(_config(write_yaml, "", "tuned.default"), "virtualInbound")
    assert [vhost.include_request_attempt_count for vhost in inbound.route_config.virtual_hosts] == [False]


def test_a_proxy_config_the_injector_would_refuse_leaves_the_meshs(write_yaml: Callable[[str], Path]) -> None:
    """A misspelt field in the pod's proxyHeaders: no sidecar would be injected, so nothing of
    the annotation is taken, and the mesh's proxyHeaders hold."""
    mesh = "defaultConfig: {proxyHeaders: {server: {value: edge}}}"
    config = _config(write_yaml, mesh, "tuned.default", "{server: {disabld: true}}")
    assert connection_manager(config, "virtualInbound").server_name == "edge"


def test_a_served_node_runs_with_the_proxy_config_it_sends(write_yaml: Callable[[str], Path]) -> None:
    """serve reads a node's PROXY_CONFIG (the bootstrap meshctl writes for the pod carries its
    annotation's proxyHeaders there, as istio-agent does), not the pod's annotation: the
    proxy it serves is the one translate renders."""
    mesh = "defaultConfig: {proxyHeaders: {requestId: {disabled: true}}}"
    snapshot = _snapshot(write_yaml, mesh, _pod("tuned", "{app: ratings}", "{server: {value: edge}}"))
    offline = snapshot.proxy("tuned.default")
    node = ads_bootstrap(offline, "127.0.0.1", 15010, admin_port=0).node
    served = for_node(parse_node(node), offline.workload)
    assert served.proxy_headers == offline.proxy_headers
    inbound = [connection_manager(generate(snapshot, proxy), "virtualInbound") for proxy in (served, offline)]
    assert inbound[0] == inbound[1] and inbound[0].server_name == "edge" and inbound[0].HasField("generate_request_id")
    bare = for_node(parse_node(ads_bootstrap(snapshot.proxy("deploy/client.default"), "127.0.0.1", 15010,
                                             admin_port=0).node), None)
    assert bare.proxy_headers is None


PRESERVE = ('header_key_format {stateful_formatter {name: "preserve_case" typed_config {type_url: '
            '"type.googleapis.com/envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig"}}}')
SNIFFED = "use_downstream_protocol_config {http_protocol_options {%s} http2_protocol_options {}}"
H2 = "explicit_http_config {http2_protocol_options {}}"


@pytest.mark.parametrize("target, listener", [
    ("tuned.default", "0.0.0.0_9080"), ("tuned.default", "10.96.0.60_7000"), ("tuned.default", "virtualInbound"),
    ("deploy/ingress.istio-system", "0.0.0.0_8080"),
], ids=["outbound", "sniffed outbound", "inbound", "gateway"])
def test_preserved_header_case_formats_every_connection_managers_http1(write_yaml: Callable[[str], Path], target: str,
                                                                       listener: str) -> None:
    """`preserveHttp1HeaderCase`: every class of connection manager writes HTTP/1 header names
    as they came (Envoy's preserve_case formatter), and nothing else of it changes."""
    headers = "{preserveHttp1HeaderCase: true}"
    mesh = "defaultConfig: {proxyHeaders: " + headers + "}"
    plain = connection_manager(_config(write_yaml, "", target), listener)
    got = connection_manager(_config(write_yaml, mesh, target, headers if target == "tuned.default" else ""), listener)
    assert got == changed(plain, "http_protocol_options {" + PRESERVE + "}")


def test_preserved_header_case_replaces_accept_http_10(write_yaml: Callable[[str], Path]) -> None:
    """Istio sets the connection manager's HTTP/1 options to the formatter alone, so a node's
    HTTP10 no longer accepts HTTP/1.0 there (as in Istio's buildHTTPConnectionManager)."""
    from meshctl.generate.proxy import generate

    snapshot = _snapshot(write_yaml, "defaultConfig: {proxyHeaders: {preserveHttp1HeaderCase: true}}", "")
    proxy = snapshot.proxy("deploy/client.default", istio_extensions=True, metadata={"HTTP10": "1"})
    manager = connection_manager(generate(snapshot, proxy), "0.0.0.0_9080")
    assert manager.http_protocol_options == changed(type(manager.http_protocol_options)(), PRESERVE)


@pytest.mark.parametrize("target, name, plain, preserved", [
    ("tuned.default", "outbound|9080||reviews.default.svc.cluster.local", None,
     "explicit_http_config {http_protocol_options {" + PRESERVE + "}}"),
    ("tuned.default", "outbound|7000||ratings.default.svc.cluster.local", SNIFFED % "", SNIFFED % PRESERVE),
    ("tuned.default", "outbound|9090||ratings.default.svc.cluster.local", H2, H2),
    ("tuned.default", "inbound|9080||", None, "explicit_http_config {http_protocol_options {" + PRESERVE + "}}"),
    ("tuned.default", "inbound|7000||", SNIFFED % "", SNIFFED % PRESERVE),
    ("tuned.default", "inbound|9090||", H2, H2),
    ("deploy/ingress.istio-system", "outbound|7000||ratings.default.svc.cluster.local", None,
     "explicit_http_config {http_protocol_options {" + PRESERVE + "}}"),
], ids=["http", "sniffed: kept when mirroring the client", "grpc: h2 untouched", "inbound http",
        "inbound sniffed", "inbound grpc", "gateway sniffed: explicit HTTP/1, no mirroring"])
def test_preserved_header_case_upstream(write_yaml: Callable[[str], Path], target: str, name: str, plain: str | None,
                                        preserved: str | None) -> None:
    """The clusters of HTTP and sniffed ports keep header case upstream (Istio's
    setUpstreamProtocol); a sidecar mirroring the client's protocol keeps the formatter for
    HTTP/1; HTTP/2 clusters are as they were."""
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

    from testsupport import cluster

    def options(config: ProxyConfig) -> str | None:
        found = cluster(config, name).typed_extension_protocol_options
        key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        if key not in found:
            return None
        message = http_protocol_options_pb2.HttpProtocolOptions()
        assert found[key].Unpack(message)
        return str(message)

    def expected(text: str | None) -> str | None:
        return None if text is None else str(changed(http_protocol_options_pb2.HttpProtocolOptions(), text))

    headers = "{preserveHttp1HeaderCase: true}"
    mesh = "defaultConfig: {proxyHeaders: " + headers + "}"
    assert options(_config(write_yaml, "", target)) == expected(plain)
    assert options(_config(write_yaml, mesh, target, headers if target == "tuned.default" else "")) == expected(preserved)


@pytest.mark.parametrize("mesh, pod, sampling, path_length, server", [
    ("", "{sampling: 10}", 10.0, 0, ""),
    ("defaultConfig: {tracing: {sampling: 30, maxPathTagLength: 99}}", "{sampling: 10}", 10.0, 99, ""),
    ("defaultConfig: {tracing: {sampling: 30}, proxyHeaders: {server: {value: edge}}}", "{maxPathTagLength: 64}",
     30.0, 64, "edge"),
], ids=["the pod's sampling", "field by field over the mesh's", "the mesh's proxyHeaders still hold"])
def test_a_pods_own_tracing(write_yaml: Callable[[str], Path], mesh: str, pod: str, sampling: float, path_length: int,
                            server: str) -> None:
    """A pod's `proxy.istio.io/config` `tracing` (merged over the mesh's `defaultConfig`, as the
    injector merges it) samples its own connection managers, outbound and inbound (istiod
    reads the proxy's ProxyConfig, not the mesh's); a client of the mesh's default keeps it."""
    config = _config(write_yaml, mesh, "tuned.default", pod, part="tracing")
    for listener in ("0.0.0.0_9080", "virtualInbound"):
        manager = connection_manager(config, listener)
        assert (manager.tracing.random_sampling.value, manager.tracing.max_path_tag_length.value) == (sampling, path_length)
        if listener == "0.0.0.0_9080":
            assert manager.server_name == server
    default = connection_manager(_config(write_yaml, mesh, "deploy/client.default", pod, part="tracing"), "0.0.0.0_9080")
    plain = connection_manager(_config(write_yaml, mesh, "deploy/client.default"), "0.0.0.0_9080")
    assert default == plain
