"""TLS contexts, table by table: Istio mutual TLS, DestinationRule TLS settings, inbound mTLS.

Expected contexts are spelled out with xds-protos classes, secret configs included, and
compared in full with what the constructors build.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import any_pb2
from protoassert import assert_proto_equal
from sds_expected import exact, from_agent, over_ads

from meshctl.config.kinds.networking.destination_rule import ClientTLSSettings
from meshctl.generate import tls

SNI = "outbound_.9080_._.reviews.default.svc.cluster.local"
ACCOUNT = "spiffe://cluster.local/ns/default/sa/reviews"
TLS12, TLS13 = common_pb2.TlsParameters.TLSv1_2, common_pb2.TlsParameters.TLSv1_3
CIPHERS = ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256",
           "ECDHE-RSA-AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-GCM-SHA256"]


def upstream(*, sni: str = "", alpn: Sequence[str] = (), certificates: Sequence[secret_pb2.SdsSecretConfig] = (),
             validation: dict[str, object] | None = None, combined: dict[str, object] | None = None
             ) -> tls_pb2.UpstreamTlsContext:
    common = tls_pb2.CommonTlsContext(
        tls_params={"tls_minimum_protocol_version": TLS12, "tls_maximum_protocol_version": TLS13},
        alpn_protocols=list(alpn), tls_certificate_sds_secret_configs=list(certificates))
    if validation is not None:
        common.validation_context.CopyFrom(common_pb2.CertificateValidationContext(**validation))
    if combined is not None:
        common.combined_validation_context.CopyFrom(tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
            **combined))
    return tls_pb2.UpstreamTlsContext(sni=sni, common_tls_context=common)


def istio_roots(*accounts: str) -> dict[str, object]:
    return {"default_validation_context": {"match_subject_alt_names": exact(*accounts)},
            "validation_context_sds_secret_config": from_agent("ROOTCA")}


@pytest.mark.parametrize(("h2", "metadata_exchange", "alpn"), [
    (False, True, ["istio-peer-exchange", "istio"]),
    (True, True, ["istio-peer-exchange", "istio", "h2"]),
    (False, False, ["istio"]),
    (True, False, ["istio", "h2"]),
])
def test_istio_mutual(h2: bool, metadata_exchange: bool, alpn: list[str]) -> None:
    expected = upstream(sni=SNI, alpn=alpn, certificates=[from_agent("default")], combined=istio_roots(ACCOUNT))
    assert_proto_equal(tls.istio_mutual(SNI, [ACCOUNT], h2=h2, metadata_exchange=metadata_exchange), expected)


@pytest.mark.parametrize("sni", [SNI, ""])
def test_istio_mutual_socket_is_the_context_serialized_whole(sni: str) -> None:
    """The socket's bytes, made by appending the SNI to a shared serialization, are exactly
    those of the whole context serialized deterministically."""
    context = upstream(sni=sni, alpn=["istio-peer-exchange", "istio"], certificates=[from_agent("default")],
                       combined=istio_roots(ACCOUNT, "spiffe://cluster.local/ns/default/sa/other"))
    packed = any_pb2.Any(type_url="type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                         value=context.SerializeToString(deterministic=True))
    expected = base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=packed)
    built = tls.istio_mutual_socket(sni, [ACCOUNT, "spiffe://cluster.local/ns/default/sa/other"], h2=False,
                                    metadata_exchange=True)
    assert built.typed_config.value == packed.value
    assert_proto_equal(built, expected)


@pytest.mark.parametrize(("settings", "h2", "accounts", "expected"), [
    pytest.param(ClientTLSSettings(mode="SIMPLE"), False, (ACCOUNT,), upstream(combined={
        "default_validation_context": {"match_subject_alt_names": exact(ACCOUNT)},
        "validation_context_sds_secret_config": from_agent("file-root:system")}),
        id="SIMPLE: system roots, the service's accounts"),
    pytest.param(ClientTLSSettings(mode="SIMPLE", ca_certificates="/etc/ca.pem", subject_alt_names=("api.example",),
                                   sni="api.example", ca_crl="/etc/crl.pem"), True, (ACCOUNT,),
                 upstream(sni="api.example", alpn=["h2"], combined={
                     "default_validation_context": {"match_subject_alt_names": exact("api.example"),
                                                    "crl": {"filename": "/etc/crl.pem"}},
                     "validation_context_sds_secret_config": from_agent("file-root:/etc/ca.pem")}),
                 id="SIMPLE: every field, HTTP/2"),
    pytest.param(ClientTLSSettings(mode="MUTUAL", client_certificate="/c.pem", private_key="/k.pem",
                                   ca_certificates="/ca.pem"), False, (),
                 upstream(certificates=[from_agent("file-cert:/c.pem~/k.pem")], combined={
                     "default_validation_context": {},
                     "validation_context_sds_secret_config": from_agent("file-root:/ca.pem")}),
                 id="MUTUAL with files"),
    pytest.param(ClientTLSSettings(mode="MUTUAL", credential_name="client-cert", subject_alt_names=("db",)), False,
                 (ACCOUNT,),
                 upstream(certificates=[over_ads("kubernetes://client-cert")], combined={
                     "default_validation_context": {"match_subject_alt_names": exact("db")},
                     "validation_context_sds_secret_config": over_ads("kubernetes://client-cert-cacert")}),
                 id="credentialName"),
    pytest.param(ClientTLSSettings(mode="SIMPLE", insecure_skip_verify=True), False, (ACCOUNT,),
                 upstream(validation={}), id="insecureSkipVerify"),
])
def test_user_tls(settings: ClientTLSSettings, h2: bool, accounts: tuple[str, ...],
                  expected: tls_pb2.UpstreamTlsContext) -> None:
    assert_proto_equal(tls.user_tls(settings, h2=h2, service_accounts=accounts), expected)


def typed(kind: str, value: str) -> common_pb2.SubjectAltNameMatcher:
    return common_pb2.SubjectAltNameMatcher(san_type=common_pb2.SubjectAltNameMatcher.SanType.Value(kind),
                                            matcher=string_pb2.StringMatcher(exact=value))


@pytest.mark.parametrize(("values", "expected"), [
    pytest.param([ACCOUNT], [typed("URI", ACCOUNT)], id="a SPIFFE id: a URI SAN, nothing else can hold it"),
    pytest.param(["api.example.com"], [typed(kind, "api.example.com") for kind in ("DNS", "URI", "EMAIL", "IP_ADDRESS")],
                 id="a DestinationRule's DNS name: every SAN type, as the untyped field matches it"),
    pytest.param(["10.0.0.1", "urn:x"], [typed(kind, value) for value in ("10.0.0.1", "urn:x")
                                         for kind in ("DNS", "URI", "EMAIL", "IP_ADDRESS")],
                 id="an address, a URN without //"),
])
def test_typed_sans_match_what_the_untyped_field_matched(values: list[str],
                                                        expected: list[common_pb2.SubjectAltNameMatcher]) -> None:
    built = common_pb2.CertificateValidationContext()
    tls.match_sans(built, values, typed=True)
    assert_proto_equal(built, common_pb2.CertificateValidationContext(match_typed_subject_alt_names=expected))
    untyped = common_pb2.CertificateValidationContext()
    tls.match_sans(untyped, values, typed=False)
    assert_proto_equal(untyped, common_pb2.CertificateValidationContext(match_subject_alt_names=exact(*values)))


def uri_prefix(domain: str) -> common_pb2.SubjectAltNameMatcher:
    return common_pb2.SubjectAltNameMatcher(san_type=common_pb2.SubjectAltNameMatcher.URI,
                                            matcher=string_pb2.StringMatcher(prefix=f"spiffe://{domain}/"))


@pytest.mark.parametrize(("alpn", "validation", "peers"), [
    pytest.param(tls.INBOUND_ALPN_HTTP, tls.PeerValidation(("cluster.local",)),
                 {"match_typed_subject_alt_names": [uri_prefix("cluster.local")]},
                 id="HTTP chain, plain Envoy: typed URI SAN matcher"),
    pytest.param(tls.INBOUND_ALPN_TCP, tls.PeerValidation(("cluster.local", "old.example")),
                 {"match_typed_subject_alt_names": [uri_prefix("cluster.local"), uri_prefix("old.example")]},
                 id="TCP chain, a trust domain alias"),
    pytest.param(tls.INBOUND_ALPN_HTTP, tls.PeerValidation(("cluster.local",), typed=False),
                 {"match_subject_alt_names": [string_pb2.StringMatcher(prefix="spiffe://cluster.local/")]},
                 id="istio-proxy: istiod's deprecated field"),
])
def test_inbound_mtls(alpn: list[str], validation: tls.PeerValidation, peers: dict[str, object]) -> None:
    expected = tls_pb2.DownstreamTlsContext(
        require_client_certificate={"value": True},
        common_tls_context=tls_pb2.CommonTlsContext(
            alpn_protocols=alpn,
            tls_params={"tls_minimum_protocol_version": TLS12, "tls_maximum_protocol_version": TLS13,
                        "cipher_suites": CIPHERS},
            tls_certificate_sds_secret_configs=[from_agent("default")],
            combined_validation_context={
                "default_validation_context": peers,
                "validation_context_sds_secret_config": from_agent("ROOTCA")}))
    assert_proto_equal(tls.inbound_mtls(alpn, validation), expected)


@pytest.mark.parametrize(("domain", "aliases", "expected"), [
    ("cluster.local", (), ("cluster.local",)),
    ("cluster.local", ("old.example", "", "cluster.local", "older.example"), ("cluster.local", "old.example",
                                                                              "older.example")),
])
def test_peer_validation_lists_each_trust_domain_once(domain: str, aliases: tuple[str, ...],
                                                      expected: tuple[str, ...]) -> None:
    assert tls.PeerValidation.of((domain, *aliases)).trust_domains == expected
