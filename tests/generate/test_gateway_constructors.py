"""The gateway constructors, table by table: a server's typed view in, the whole Envoy message
out. The cases are Istio's own (pilot/pkg/networking/core/gateway_test.go), written out by hand
as xds-protos messages: TestBuildGatewayListenerTlsContext for the TLS contexts, and the
listener, connection manager and route configuration of a gateway's HTTPS server."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message as Proto
from protoassert import assert_proto_equal
from sds_expected import exact, from_agent, over_ads

from meshctl.config.kinds.networking.gateway import ServerTLSSettings, TLSCertificate
from meshctl.generate.gateway.listeners import GatewayChain, render_listener
from meshctl.generate.gateway.tls import credential_resource, server_tls_context

HTTP_ALPN = ["h2", "http/1.1"]


def packed(message: Proto) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message, deterministic=True)
    return out


def downstream(certificates: list[secret_pb2.SdsSecretConfig], *, require: bool, alpn: list[str] = HTTP_ALPN,
               combined: dict[str, object] | None = None, validation: dict[str, object] | None = None,
               params: dict[str, object] | None = None) -> tls_pb2.DownstreamTlsContext:
    common = tls_pb2.CommonTlsContext(alpn_protocols=alpn, tls_certificate_sds_secret_configs=certificates)
    if combined is not None:
        common.combined_validation_context.CopyFrom(
            tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(**combined))  # type: ignore[arg-type]
    if validation is not None:
        common.validation_context.CopyFrom(common_pb2.CertificateValidationContext(**validation))  # type: ignore[arg-type]
    if params is not None:
        common.tls_params.CopyFrom(common_pb2.TlsParameters(**params))  # type: ignore[arg-type]
    return tls_pb2.DownstreamTlsContext(common_tls_context=common,
                                        require_client_certificate=wrappers_pb2.BoolValue(value=require))


SANS = ("subject.name.a.com", "subject.name.b.com")
FILES = {"server_certificate": "server-cert.crt", "private_key": "private-key.key"}
FILE_CERT = "file-cert:server-cert.crt~private-key.key"
CRL = "/custom/path/to/crl.pem"


@pytest.mark.parametrize(("tls", "expected"), [
    pytest.param(ServerTLSSettings(mode="ISTIO_MUTUAL"), downstream(
        [from_agent("default")], require=True,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(),
                  "validation_context_sds_secret_config": from_agent("ROOTCA")}),
        id="mesh SDS enabled, tls mode ISTIO_MUTUAL"),
    pytest.param(ServerTLSSettings(mode="ISTIO_MUTUAL", ca_crl=CRL), downstream(
        [from_agent("default")], require=True,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(
            crl=base_pb2.DataSource(filename=CRL)), "validation_context_sds_secret_config": from_agent("ROOTCA")}),
        id="mesh SDS enabled, tls mode ISTIO_MUTUAL, CRL specified"),
    pytest.param(ServerTLSSettings(mode="ISTIO_MUTUAL", credential_name="ignored"), downstream(
        [from_agent("default")], require=True,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(),
                  "validation_context_sds_secret_config": from_agent("ROOTCA")}),
        id="tls mode ISTIO_MUTUAL, with credentialName"),
    pytest.param(ServerTLSSettings(mode="SIMPLE"), downstream([from_agent("default")], require=False),
                 id="no credential name no key no cert tls SIMPLE"),
    pytest.param(ServerTLSSettings(mode="SIMPLE", credential_name="ingress-sds-resource-name"),
                 downstream([over_ads("kubernetes://ingress-sds-resource-name")], require=False),
                 id="credential name no key no cert tls SIMPLE"),
    pytest.param(ServerTLSSettings(mode="SIMPLE", credential_name="ingress-sds-resource-name", subject_alt_names=SANS),
                 downstream([over_ads("kubernetes://ingress-sds-resource-name")], require=False,
                            validation={"match_subject_alt_names": exact(*SANS)}),
                 id="credential name subject alternative name no key no cert tls SIMPLE"),
    pytest.param(ServerTLSSettings(mode="SIMPLE", credential_names=("ingress-sds-resource-name",
                                                                    "ingress-sds-resource-name2"),
                                   subject_alt_names=SANS),
                 downstream([over_ads("kubernetes://ingress-sds-resource-name"), over_ads("kubernetes://ingress-sds-resource-name2")],
                            require=False, validation={"match_subject_alt_names": exact(*SANS)}),
                 id="multiple credential names subject alternative name tls SIMPLE"),
    pytest.param(ServerTLSSettings(mode="SIMPLE", **FILES), downstream([from_agent(FILE_CERT)], require=False),
                 id="no credential name key and cert tls SIMPLE"),
    pytest.param(ServerTLSSettings(mode="SIMPLE", tls_certificates=(
        TLSCertificate(**FILES), TLSCertificate(server_certificate="server-cert2.crt", private_key="private-key2.key"))),
        downstream([from_agent(FILE_CERT), from_agent("file-cert:server-cert2.crt~private-key2.key")], require=False),
        id="no credential name multiple certificates with SIMPLE mode"),
    pytest.param(ServerTLSSettings(mode="MUTUAL", ca_certificates="ca-cert.crt", **FILES), downstream(
        [from_agent(FILE_CERT)], require=True,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(),
                  "validation_context_sds_secret_config": from_agent("file-root:ca-cert.crt")}),
        id="no credential name key and cert tls MUTUAL"),
    pytest.param(ServerTLSSettings(mode="MUTUAL", ca_certificates="ca-cert.crt", tls_certificates=(
        TLSCertificate(**FILES), TLSCertificate(server_certificate="server-cert2.crt", private_key="private-key2.key"))),
        downstream([from_agent(FILE_CERT), from_agent("file-cert:server-cert2.crt~private-key2.key")], require=True,
                   combined={"default_validation_context": common_pb2.CertificateValidationContext(),
                             "validation_context_sds_secret_config": from_agent("file-root:ca-cert.crt")}),
        id="no credential name multiple certificates tls MUTUAL"),
    pytest.param(ServerTLSSettings(mode="MUTUAL", ca_certificates="ca-cert.crt", subject_alt_names=SANS, ca_crl=CRL,
                                   **FILES), downstream(
        [from_agent(FILE_CERT)], require=True,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(
            match_subject_alt_names=exact(*SANS), crl=base_pb2.DataSource(filename=CRL)),
                  "validation_context_sds_secret_config": from_agent("file-root:ca-cert.crt")}),
        id="no credential name key and cert subject alt names tls MUTUAL (with CRL)"),
    pytest.param(ServerTLSSettings(mode="OPTIONAL_MUTUAL", ca_certificates="ca-cert.crt", subject_alt_names=SANS,
                                   **FILES), downstream(
        [from_agent(FILE_CERT)], require=False,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(
            match_subject_alt_names=exact(*SANS)), "validation_context_sds_secret_config": from_agent("file-root:ca-cert.crt")}),
        id="no credential name key and cert subject alt names tls OPTIONAL_MUTUAL"),
    pytest.param(ServerTLSSettings(mode="MUTUAL", credential_name="ingress-sds-resource-name", subject_alt_names=SANS,
                                   **FILES), downstream(
        [over_ads("kubernetes://ingress-sds-resource-name")], require=True,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(
            match_subject_alt_names=exact(*SANS)),
                  "validation_context_sds_secret_config": over_ads("kubernetes://ingress-sds-resource-name-cacert")}),
        id="credential name subject alternative name key and cert tls MUTUAL"),
    pytest.param(ServerTLSSettings(mode="OPTIONAL_MUTUAL", credential_name="ingress-sds-resource-name",
                                   subject_alt_names=SANS, **FILES), downstream(
        [over_ads("kubernetes://ingress-sds-resource-name")], require=False,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(
            match_subject_alt_names=exact(*SANS)),
                  "validation_context_sds_secret_config": over_ads("kubernetes://ingress-sds-resource-name-cacert")}),
        id="credential name subject alternative name key and cert tls OPTIONAL_MUTUAL"),
    pytest.param(ServerTLSSettings(mode="MUTUAL", credential_name="ingress-sds-resource-name",
                                   verify_certificate_spki=("abcdef",)), downstream(
        [over_ads("kubernetes://ingress-sds-resource-name")], require=True,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(verify_certificate_spki=["abcdef"]),
                  "validation_context_sds_secret_config": over_ads("kubernetes://ingress-sds-resource-name-cacert")}),
        id="credential name verify spki key and cert tls MUTUAL"),
    pytest.param(ServerTLSSettings(mode="MUTUAL", credential_name="ingress-sds-resource-name",
                                   verify_certificate_hash=("fedcba",)), downstream(
        [over_ads("kubernetes://ingress-sds-resource-name")], require=True,
        combined={"default_validation_context": common_pb2.CertificateValidationContext(verify_certificate_hash=["fedcba"]),
                  "validation_context_sds_secret_config": over_ads("kubernetes://ingress-sds-resource-name-cacert")}),
        id="credential name verify hash key and cert tls MUTUAL"),
    pytest.param(ServerTLSSettings(mode="SIMPLE", cipher_suites=("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA"),
                                   **FILES),
                 downstream([from_agent(FILE_CERT)], require=False, params={"cipher_suites": ["ECDHE-ECDSA-AES128-SHA"]}),
                 id="duplicated cipher suites with tls SIMPLE"),
    pytest.param(ServerTLSSettings(mode="SIMPLE", min_protocol_version="TLSV1_2", max_protocol_version="TLSV1_3",
                                   credential_name="cred"),
                 downstream([over_ads("kubernetes://cred")], require=False, params={
                     "tls_minimum_protocol_version": common_pb2.TlsParameters.TLSv1_2,
                     "tls_maximum_protocol_version": common_pb2.TlsParameters.TLSv1_3}),
                 id="tls min/max versions"),
    pytest.param(ServerTLSSettings(mode="MUTUAL", credential_name="cred", ca_cert_credential_name="client-ca"),
                 downstream([over_ads("kubernetes://cred")], require=True, combined={
                     "default_validation_context": common_pb2.CertificateValidationContext(),
                     "validation_context_sds_secret_config": over_ads("kubernetes://client-ca")}),
                 id="caCertCredentialName overrides NAME-cacert"),
    pytest.param(ServerTLSSettings(mode="SIMPLE", credential_name="builtin://"),
                 downstream([from_agent("default")], require=False), id="builtin:// is the workload certificate"),
])
def test_server_tls_context(tls: ServerTLSSettings, expected: tls_pb2.DownstreamTlsContext) -> None:
    assert_proto_equal(server_tls_context(tls), expected)


def test_istio_mutual_tls_terminated_to_tcp_offers_peer_exchange() -> None:
    context = server_tls_context(ServerTLSSettings(mode="ISTIO_MUTUAL"), tcp_terminated=True)
    assert list(context.common_tls_context.alpn_protocols) == ["istio-peer-exchange", "h2", "http/1.1"]
    simple = server_tls_context(ServerTLSSettings(mode="SIMPLE", credential_name="c"), tcp_terminated=True)
    assert list(simple.common_tls_context.alpn_protocols) == HTTP_ALPN


@pytest.mark.parametrize(("name", "resource"), [
    ("cert", "kubernetes://cert"),
    ("kubernetes://cert", "kubernetes://cert"),
    ("kubernetes-gateway://ns/cert", "kubernetes-gateway://ns/cert"),
    ("configmap://ns/roots", "configmap://ns/roots"),
])
def test_credential_resource_names(name: str, resource: str) -> None:
    assert credential_resource(name) == resource


def test_https_listener() -> None:
    """A listener with one HTTPS chain: bound, outbound, TLS inspector, SNI, 15 s handshakes."""
    context = server_tls_context(ServerTLSSettings(mode="SIMPLE", credential_name="cert"))
    filters = [lc.Filter(name="envoy.filters.network.tcp_proxy")]
    listener = render_listener("0.0.0.0", 8443, [GatewayChain(filters, sni_hosts=["b.example.com", "a.example.com"],
                                                              tls_context=context)])
    inspector = tls_inspector_pb2.TlsInspector(initial_read_buffer_size=wrappers_pb2.UInt32Value(value=512))
    expected = listener_pb2.Listener(
        name="0.0.0.0_8443", traffic_direction=base_pb2.OUTBOUND,
        address={"socket_address": {"address": "0.0.0.0", "port_value": 8443}},
        listener_filters=[lc.ListenerFilter(name="envoy.filters.listener.tls_inspector", typed_config=packed(inspector))],
        filter_chains=[lc.FilterChain(
            filter_chain_match=lc.FilterChainMatch(server_names=["a.example.com", "b.example.com"]),
            transport_socket=base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=packed(context)),
            filters=filters, transport_socket_connect_timeout=duration_pb2.Duration(seconds=15))],
    )
    assert_proto_equal(listener, expected)


def test_a_wildcard_sni_matches_everything_and_a_plain_chain_needs_no_inspector() -> None:
    filters = [lc.Filter(name="envoy.filters.network.tcp_proxy")]
    wildcard = render_listener("0.0.0.0", 443, [GatewayChain(filters, sni_hosts=["*", "a.example.com"])])
    assert not wildcard.filter_chains[0].HasField("filter_chain_match")
    assert [f.name for f in wildcard.listener_filters] == ["envoy.filters.listener.tls_inspector"]
    plain = render_listener("10.0.0.1", 8000, [GatewayChain(filters)])
    assert plain.name == "10.0.0.1_8000" and not plain.listener_filters
    assert not plain.filter_chains[0].HasField("filter_chain_match")


def test_gateway_connection_manager() -> None:
    """buildGatewayConnectionManager: the outbound manager, plus the client's own address,
    client certificate details sanitized and set anew, `server: istio-envoy`, HTTP/1 options;
    and its route configuration asked for over RDS."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

    from meshctl.generate import filters
    from meshctl.generate.context import ProxyContext
    from meshctl.generate.gateway.listeners import gateway_connection_manager
    from meshctl.model.node import ROUTER
    from meshctl.model.proxy import Proxy
    from meshctl.model.snapshot import build_snapshot

    proxy = Proxy(id="gw.istio-system", namespace="istio-system", ip="10.0.0.1", type=ROUTER)
    snapshot = build_snapshot([])
    ctx = ProxyContext(snapshot, proxy, snapshot.scope_for(proxy))
    manager = gateway_connection_manager(ctx, rds="http.8080", stat_prefix="outbound_0.0.0.0_8080;", port_protocol="HTTP")
    expected = filters.connection_manager(proxy, stat_prefix="outbound_0.0.0.0_8080;", direction=filters.OUTBOUND,
                                          port_protocol="HTTP", mesh=snapshot.mesh, rds="http.8080")
    expected.use_remote_address.value = True
    expected.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
    expected.set_current_client_cert_details.CopyFrom(hcm_pb2.HttpConnectionManager.SetCurrentClientCertDetails(
        subject=wrappers_pb2.BoolValue(value=True), cert=True, dns=True, uri=True))
    expected.server_name = "istio-envoy"
    expected.http_protocol_options.SetInParent()
    assert_proto_equal(manager, expected)
    assert list(ctx.route_names) == ["http.8080"]
    assert [f.name for f in manager.http_filters] == ["envoy.filters.http.grpc_stats", "envoy.filters.http.fault",
                                                     "envoy.filters.http.cors", "envoy.filters.http.router"]
