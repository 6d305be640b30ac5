"""The two proxy flavors: istio-proxy gets exactly istiod's fields, deprecated ones included;
plain Envoy gets their current equivalents (checked against Envoy in test_envoy_accepts)."""

from __future__ import annotations

from collections.abc import Callable

from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

from meshctl.generate.proxy import ProxyConfig
from testsupport import cluster, vhost

REVIEWS = "reviews.default.svc.cluster.local"


def _validation(config: ProxyConfig) -> common_pb2.CertificateValidationContext:
    context = tls_pb2.UpstreamTlsContext()
    cluster(config, f"outbound|9080||{REVIEWS}").transport_socket_matches[0].transport_socket.typed_config.Unpack(context)
    return context.common_tls_context.combined_validation_context.default_validation_context


def test_istio_proxy_gets_istiods_deprecated_fields(client_config: Callable[..., ProxyConfig]) -> None:
    config = client_config(istio_extensions=True)
    (route,) = vhost(config, "9080", f"{REVIEWS}:9080").routes
    assert route.route.HasField("max_grpc_timeout") and not route.route.HasField("max_stream_duration")
    validation = _validation(config)
    assert [m.exact for m in validation.match_subject_alt_names] == ["spiffe://cluster.local/ns/default/sa/reviews"]
    assert not validation.match_typed_subject_alt_names


def test_plain_envoy_gets_the_current_equivalents(client_config: Callable[..., ProxyConfig]) -> None:
    config = client_config()
    (route,) = vhost(config, "9080", f"{REVIEWS}:9080").routes
    assert route.route.max_stream_duration.HasField("grpc_timeout_header_max")
    assert not route.route.HasField("max_grpc_timeout")
    catch_all = vhost(config, "9080", "allow_any").routes[0].route
    assert catch_all.max_stream_duration.HasField("grpc_timeout_header_max")
    validation = _validation(config)
    assert [(m.san_type, m.matcher.exact) for m in validation.match_typed_subject_alt_names] == [
        (common_pb2.SubjectAltNameMatcher.URI, "spiffe://cluster.local/ns/default/sa/reviews")]
    assert not validation.match_subject_alt_names
