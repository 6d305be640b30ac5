"""The seed article's example, end to end: the issue's "done means" facts and a golden dump."""

from __future__ import annotations

import json
from google.protobuf import json_format

from meshctl.formats import OutputFormat
from meshctl.inspect.rendered import render
from meshctl.generate.proxy import ProxyConfig
from testsupport import GOLDEN as GOLDEN_DIR

GOLDEN = GOLDEN_DIR / "seed-reviews-productpage.json"
PRODUCTPAGE = "productpage-v1-7d9f6b8c5-abcde.default"
V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"


def _as_dict(message: object) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _by_name(items: list, key: str = "name") -> dict:
    return {getattr(item, key): item for item in items}


def test_route_config_9080_sends_jason_to_v2_and_everyone_else_to_v1(seed, config_for) -> None:
    config: ProxyConfig = config_for(seed, PRODUCTPAGE)
    routes = _by_name(config.routes)
    assert list(routes) == ["9080"]
    vhosts = {vh.name: vh for vh in routes["9080"].virtual_hosts}
    reviews = vhosts["reviews.default.svc.cluster.local:9080"]
    assert list(reviews.domains) == [
        "reviews.default.svc.cluster.local",
        "reviews.default.svc.cluster.local.",
        "reviews",
        "reviews.default.svc",
        "reviews.default",
        "10.96.12.34",
    ]
    first, second = reviews.routes
    assert [(h.name, h.string_match.exact) for h in first.match.headers] == [("end-user", "jason")]
    assert first.match.prefix == "/"
    assert first.route.cluster == V2
    assert not second.match.headers and second.match.prefix == "/"
    assert second.route.cluster == V1
    assert first.metadata.filter_metadata["istio"]["config"] == (
        "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews-route"
    )
    assert list(vhosts)[-1] == "allow_any"


def test_subset_clusters_are_eds_with_connection_limit_and_auto_mtls(seed, config_for) -> None:
    clusters = _by_name(config_for(seed, PRODUCTPAGE).clusters)
    for name in (V1, V2):
        cluster = _as_dict(clusters[name])
        assert cluster["type"] == "EDS"
        assert cluster["eds_cluster_config"]["service_name"] == name
        assert cluster["circuit_breakers"]["thresholds"][0]["max_connections"] == 100
        istio, plain = cluster["transport_socket_matches"]
        assert istio["match"] == {"tlsMode": "istio"} and plain["name"] == "tlsMode-disabled"
        context = istio["transport_socket"]["typed_config"]["common_tls_context"]
        sds = context["tls_certificate_sds_secret_configs"][0]
        assert sds["name"] == "default"
        assert sds["sds_config"]["api_config_source"]["grpc_services"][0]["envoy_grpc"]["cluster_name"] == "sds-grpc"
        assert context["combined_validation_context"]["validation_context_sds_secret_config"]["name"] == "ROOTCA"
        assert context["combined_validation_context"]["default_validation_context"]["match_typed_subject_alt_names"] == [
            {"san_type": "URI", "matcher": {"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"}}
        ]
        assert cluster["metadata"]["filter_metadata"]["istio"]["config"].endswith("/destination-rule/reviews-destination")


def test_v2_endpoints_are_exactly_the_v2_pods(seed, config_for) -> None:
    endpoints = _by_name(config_for(seed, PRODUCTPAGE).endpoints, "cluster_name")
    addresses = {
        (lb.endpoint.address.socket_address.address, lb.endpoint.address.socket_address.port_value)
        for group in endpoints[V2].endpoints
        for lb in group.lb_endpoints
    }
    assert addresses == {("10.244.0.22", 9080), ("10.244.0.23", 9080)}
    v1 = [lb.endpoint.address.socket_address.address for g in endpoints[V1].endpoints for lb in g.lb_endpoints]
    assert v1 == ["10.244.0.21"]
    metadata = _as_dict(endpoints[V2].endpoints[0].lb_endpoints[0])["metadata"]["filter_metadata"]
    assert metadata["envoy.transport_socket_match"] == {"tlsMode": "istio"}
    assert metadata["istio"]["workload"] == "reviews-v2;default;reviews;v2;Kubernetes"


def test_listeners_are_virtual_outbound_virtual_inbound_and_9080(seed, config_for) -> None:
    listeners = _by_name(config_for(seed, PRODUCTPAGE).listeners)
    assert set(listeners) == {"0.0.0.0_9080", "virtualOutbound", "virtualInbound"}
    outbound = listeners["virtualOutbound"]
    assert outbound.address.socket_address.port_value == 15001 and outbound.use_original_dst.value
    assert listeners["virtualInbound"].address.socket_address.port_value == 15006
    http = listeners["0.0.0.0_9080"]
    assert http.bind_to_port.value is False
    assert list(http.filter_chains[0].filter_chain_match.application_protocols) == ["http/1.1", "h2c"]
    assert http.default_filter_chain.name == "PassthroughFilterChain"


def test_golden_config_dump(seed, config_for) -> None:
    """The whole dump, checked by hand once (see tests/golden/README.md); any change shows here."""
    dump = json.loads(render(config_for(seed, PRODUCTPAGE).packed(), "all", OutputFormat.json))
    assert dump == json.loads(GOLDEN.read_text())
