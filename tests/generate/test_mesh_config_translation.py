"""Every MeshConfig field that changes translation, one row each: mesh config in, the Envoy
field Istio would change out (translation-spec §9.1, gateways-meshconfig-analyze §1.3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meshctl.config.loader import load
from meshctl.generate.proxy import ProxyConfig, generate
from meshctl.model.meshconfig import mesh_config_text
from meshctl.model.snapshot import build_snapshot
from testsupport import BASE, cluster, vhost

REVIEWS = "outbound|9080||reviews.default.svc.cluster.local"

ELSEWHERE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: elsewhere, namespace: other}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http: [{route: [{destination: {host: reviews.default.svc.cluster.local, subset: v9}}]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: mesh-root}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""


@pytest.fixture
def translated(tmp_path: Path) -> Callable[[str], ProxyConfig]:
    """The client sidecar's config for BASE (plus a VirtualService in another namespace and a
    Sidecar in namespace mesh-root) under the given mesh config text."""

    def build(mesh_text: str) -> ProxyConfig:
        inputs = tmp_path / "inputs.yaml"
        inputs.write_text(BASE + "---" + ELSEWHERE)
        result = load([str(inputs)], "default")
        assert not result.problems
        snapshot = build_snapshot(result.resources, mesh_config_text(mesh_text, "mesh.yaml"))
        return generate(snapshot, snapshot.proxy("deploy/client.default"))

    return build


def _listener(config: ProxyConfig, name: str):  # type: ignore[no-untyped-def]
    return {listener.name: listener for listener in config.listeners}[name]


def test_defaults_are_istiods(translated: Callable[[str], ProxyConfig]) -> None:
    config = translated("")
    reviews = cluster(config, REVIEWS)
    assert reviews.connect_timeout.seconds == 10
    assert [m.name for m in reviews.transport_socket_matches] == ["tlsMode-istio", "tlsMode-disabled"]
    assert not reviews.HasField("upstream_connection_options")
    assert vhost(config, "9080", "allow_any").routes[0].route.cluster == "PassthroughCluster"
    (route,) = vhost(config, "9080", "reviews.default.svc.cluster.local:9080").routes
    assert route.route.cluster == "outbound|9080|v9|reviews.default.svc.cluster.local"


def test_outbound_traffic_policy_registry_only(translated: Callable[[str], ProxyConfig]) -> None:
    config = translated("outboundTrafficPolicy: {mode: REGISTRY_ONLY}")
    (route,) = vhost(config, "9080", "block_all").routes
    assert route.direct_response.status == 502
    catch_all = _listener(config, "virtualOutbound").filter_chains[-1]
    assert catch_all.name == "virtualOutbound-catchall-tcp"
    assert b"BlackHoleCluster" in catch_all.filters[0].typed_config.value
    # `outboundTrafficPolicy: {}` is the enum's zero value, REGISTRY_ONLY, as in Istio
    assert any(v.name == "block_all" for r in translated("outboundTrafficPolicy: {}").routes for v in r.virtual_hosts)


def test_connect_timeout_keepalive_h2_upgrade_and_auto_mtls(translated: Callable[[str], ProxyConfig]) -> None:
    config = translated("""
connectTimeout: 2.5s
tcpKeepalive: {time: 30s, interval: 5s, probes: 3}
h2UpgradePolicy: UPGRADE
enableAutoMtls: false
""")
    reviews = cluster(config, REVIEWS)
    assert (reviews.connect_timeout.seconds, reviews.connect_timeout.nanos) == (2, 500_000_000)
    keepalive = reviews.upstream_connection_options.tcp_keepalive
    assert (keepalive.keepalive_time.value, keepalive.keepalive_interval.value, keepalive.keepalive_probes.value) == (30, 5, 3)
    assert cluster(config, "PassthroughCluster").upstream_connection_options.tcp_keepalive.keepalive_time.value == 30
    assert cluster(config, "BlackHoleCluster").connect_timeout.seconds == 2
    assert not reviews.transport_socket_matches and not reviews.HasField("transport_socket")
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

    options = http_protocol_options_pb2.HttpProtocolOptions()
    reviews.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Unpack(options)
    assert options.explicit_http_config.HasField("http2_protocol_options")  # the HTTP port upgraded to h2


def test_trust_domain_and_aliases_expand_outbound_identities(translated: Callable[[str], ProxyConfig]) -> None:
    config = translated("trustDomain: td1\ntrustDomainAliases: [td3, td2, td3]\n")
    reviews = cluster(config, REVIEWS)
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    context = tls_pb2.UpstreamTlsContext()
    reviews.transport_socket_matches[0].transport_socket.typed_config.Unpack(context)
    validation = context.common_tls_context.combined_validation_context.default_validation_context
    sans = [m.exact for m in validation.match_subject_alt_names] or \
        [m.matcher.exact for m in validation.match_typed_subject_alt_names]
    assert sans == ["spiffe://td1/ns/default/sa/reviews", "spiffe://td2/ns/default/sa/reviews",
                    "spiffe://td3/ns/default/sa/reviews"]


def test_root_namespace_and_export_defaults(translated: Callable[[str], ProxyConfig]) -> None:
    config = translated("rootNamespace: mesh-root\ndefaultVirtualServiceExportTo: ['.']\n")
    # the Sidecar of the root namespace applies (REGISTRY_ONLY), and the other namespace's
    # VirtualService is exported to its own namespace only: the default route stays
    assert vhost(config, "9080", "block_all").routes[0].direct_response.status == 502
    (route,) = vhost(config, "9080", "reviews.default.svc.cluster.local:9080").routes
    assert route.name == "default"


def test_tracing_and_locality(translated: Callable[[str], ProxyConfig]) -> None:
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

    def manager(config: ProxyConfig) -> hcm.HttpConnectionManager:
        out = hcm.HttpConnectionManager()
        _listener(config, "0.0.0.0_9080").filter_chains[0].filters[-1].typed_config.Unpack(out)
        return out

    assert not manager(translated("enableTracing: false")).HasField("tracing")
    sampled = manager(translated("defaultConfig: {tracing: {sampling: 10, maxPathTagLength: 99}}")).tracing
    assert (sampled.random_sampling.value, sampled.max_path_tag_length.value) == (10, 99)
    distributed = translated("localityLbSetting: {distribute: [{from: 'a/*', to: {'a/*': 100}}]}")
    assert cluster(distributed, REVIEWS).common_lb_config.HasField("locality_weighted_lb_config")
    assert not cluster(translated(""), REVIEWS).common_lb_config.HasField("locality_weighted_lb_config")


def test_inbound_traffic_policy_localhost(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(BASE)
    resources = load([str(inputs)], "default").resources
    snapshot = build_snapshot(resources, mesh_config_text("inboundTrafficPolicy: {mode: LOCALHOST}", "mesh.yaml"))
    proxy = snapshot.proxy("deploy/reviews-v1.default")
    inbound = cluster(generate(snapshot, proxy), "inbound|9080||")
    assert inbound.type == inbound.STATIC and not inbound.HasField("upstream_bind_config")
    socket = inbound.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (socket.address, socket.port_value) == ("127.0.0.1", 9080)
