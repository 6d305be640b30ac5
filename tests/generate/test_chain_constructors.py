"""Listeners' filter chains, table by table: a chain's model in, the whole FilterChain out."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2, wrappers_pb2
from google.protobuf.message import Message as Proto
from protoassert import assert_proto_equal
from udpa.type.v1 import typed_struct_pb2

from meshctl.generate import tls
from meshctl.generate.chains import OutboundChain, filter_chain
from meshctl.generate.inbound import ChainOption, inbound_chain


def packed(message: Proto) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message, deterministic=True)
    return out


def to_cluster(cluster: str) -> lc.Filter:
    return lc.Filter(name="envoy.filters.network.tcp_proxy",
                     typed_config=packed(tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster)))


TERMINAL = to_cluster("inbound|9080||")
FIFTEEN_SECONDS = duration_pb2.Duration(seconds=15)


def prefix(address: str, length: int) -> address_pb2.CidrRange:
    return address_pb2.CidrRange(address_prefix=address, prefix_len=wrappers_pb2.UInt32Value(value=length))


@pytest.mark.parametrize(("chain", "expected"), [
    pytest.param(OutboundChain([TERMINAL]), lc.FilterChain(
        filters=[TERMINAL], transport_socket_connect_timeout=FIFTEEN_SECONDS), id="matches everything: no match"),
    pytest.param(OutboundChain([TERMINAL], alpn=["http/1.1", "h2c"], http=True), lc.FilterChain(
        filter_chain_match={"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]},
        filters=[TERMINAL], transport_socket_connect_timeout=FIFTEEN_SECONDS), id="plaintext HTTP by ALPN"),
    pytest.param(OutboundChain([TERMINAL], server_names=["b.example", "a.example"]), lc.FilterChain(
        filter_chain_match={"server_names": ["a.example", "b.example"]},
        filters=[TERMINAL], transport_socket_connect_timeout=FIFTEEN_SECONDS), id="SNI, sorted"),
    pytest.param(OutboundChain([TERMINAL], prefix_ranges=["10.0.0.0/8", "10.1.2.3", "2001:db8::1"]), lc.FilterChain(
        filter_chain_match={"prefix_ranges": [prefix("10.0.0.0", 8), prefix("10.1.2.3", 32),
                                              prefix("2001:db8::1", 128)]},
        filters=[TERMINAL], transport_socket_connect_timeout=FIFTEEN_SECONDS), id="destination prefixes"),
])
def test_outbound_filter_chain(chain: OutboundChain, expected: lc.FilterChain) -> None:
    assert_proto_equal(filter_chain(chain, 15), expected)


METADATA_EXCHANGE = lc.Filter(name="istio.metadata_exchange", typed_config=packed(typed_struct_pb2.TypedStruct(
    type_url="type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange",
    value=struct_pb2.Struct(fields={"protocol": struct_pb2.Value(string_value="istio-peer-exchange"),
                                    "enable_discovery": struct_pb2.Value(bool_value=True)}))))


MESH = tls.PeerValidation(("cluster.local",))


def mtls(alpn: list[str]) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name="envoy.transport_sockets.tls",
                                    typed_config=packed(tls.inbound_mtls(alpn, MESH)))


RBAC = lc.Filter(name="envoy.filters.network.rbac")


@pytest.mark.parametrize(("option", "port", "exchange", "expected"), [
    pytest.param(ChainOption("tls", tuple(tls.ISTIO_HTTP_ALPNS), True, True), 9080, True, lc.FilterChain(
        name="0.0.0.0_9080",
        filter_chain_match={"destination_port": {"value": 9080}, "transport_protocol": "tls",
                            "application_protocols": ["istio-http/1.0", "istio-http/1.1", "istio-h2"]},
        transport_socket=mtls(["h2", "http/1.1"]), filters=[METADATA_EXCHANGE, TERMINAL]),
        id="mTLS HTTP, metadata exchange first"),
    pytest.param(ChainOption("tls", (), True, False), 9080, False, lc.FilterChain(
        name="0.0.0.0_9080", filter_chain_match={"destination_port": {"value": 9080}, "transport_protocol": "tls"},
        transport_socket=mtls(["istio-peer-exchange", "h2", "http/1.1"]), filters=[TERMINAL]), id="mTLS TCP"),
    pytest.param(ChainOption("tls", (), False, False), 9080, False, lc.FilterChain(
        name="0.0.0.0_9080", filter_chain_match={"destination_port": {"value": 9080}, "transport_protocol": "tls"},
        filters=[TERMINAL]), id="the application's own TLS, passed through"),
    pytest.param(ChainOption("raw_buffer", ("http/1.1", "h2c"), False, True), None, False, lc.FilterChain(
        name="0.0.0.0_9080",
        filter_chain_match={"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]},
        filters=[TERMINAL]), id="plaintext HTTP catch-all: no port match"),
])
def test_inbound_chain(option: ChainOption, port: int | None, exchange: bool, expected: lc.FilterChain) -> None:
    built = inbound_chain(option, "0.0.0.0_9080", port, [TERMINAL], metadata_exchange=exchange, validation=MESH)
    assert_proto_equal(built, expected)


def test_inbound_chain_puts_policy_filters_after_metadata_exchange() -> None:
    """Where RBAC and friends plug in: after metadata exchange (whose peer data they read),
    before the terminal filter."""
    built = inbound_chain(ChainOption("tls", (), True, False), "0.0.0.0_9080", 9080, [RBAC, TERMINAL],
                          metadata_exchange=True, validation=MESH)
    assert_proto_equal(built, lc.FilterChain(
        name="0.0.0.0_9080", filter_chain_match={"destination_port": {"value": 9080}, "transport_protocol": "tls"},
        transport_socket=mtls(["istio-peer-exchange", "h2", "http/1.1"]), filters=[METADATA_EXCHANGE, RBAC, TERMINAL]))
