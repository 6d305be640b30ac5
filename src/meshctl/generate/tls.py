"""TLS contexts: Istio mutual TLS (SDS `default` + `ROOTCA`), DestinationRule TLS, inbound mTLS."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import any_pb2

from meshctl.config.kinds.networking.destination_rule import ClientTLSSettings
from meshctl.generate.core import credential_secret_config, sds_secret_config
from meshctl.generate.protobuf import typed
from meshctl.model.secrets import ROOT_CERTIFICATE, WORKLOAD_CERTIFICATE, file_certificate, file_root
from meshctl.resources import type_url_of

__all__ = [
    "ALPN_H2_ONLY",
    "ALPN_MESH",
    "ALPN_MESH_H2",
    "ALPN_MESH_MX",
    "ALPN_MESH_MX_H2",
    "INBOUND_ALPN_HTTP",
    "INBOUND_ALPN_TCP",
    "ISTIO_ALL_ALPNS",
    "ISTIO_HTTP_ALPNS",
    "MESH_CIPHERS",
    "PeerValidation",
    "RAW_BUFFER",
    "RAW_BUFFER_SOCKET",
    "SDS_DEFAULT_CONFIG",
    "SDS_ROOT_CONFIG",
    "TLS_SOCKET",
    "auto_mtls_matches",
    "inbound_mtls",
    "istio_mutual",
    "istio_mutual_bytes",
    "istio_mutual_socket",
    "match_sans",
    "socket",
    "tls_version",
    "user_tls",
]

TLS_SOCKET = "envoy.transport_sockets.tls"
RAW_BUFFER_SOCKET = "envoy.transport_sockets.raw_buffer"

ALPN_MESH = ["istio"]
ALPN_MESH_H2 = ["istio", "h2"]
ALPN_MESH_MX = ["istio-peer-exchange", "istio"]
ALPN_MESH_MX_H2 = ["istio-peer-exchange", "istio", "h2"]
ALPN_H2_ONLY = ["h2"]
INBOUND_ALPN_HTTP = ["h2", "http/1.1"]
INBOUND_ALPN_TCP = ["istio-peer-exchange", "h2", "http/1.1"]
# Istio's ALPNs for mTLS from a sidecar: chains of a PERMISSIVE/STRICT inbound listener match them.
ISTIO_HTTP_ALPNS = ["istio-http/1.0", "istio-http/1.1", "istio-h2"]
ISTIO_ALL_ALPNS = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]
MESH_CIPHERS = [
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
]
_TLS_VERSIONS = {
    "TLS_AUTO": common_pb2.TlsParameters.TLS_AUTO,
    "TLSV1_0": common_pb2.TlsParameters.TLSv1_0,
    "TLSV1_1": common_pb2.TlsParameters.TLSv1_1,
    "TLSV1_2": common_pb2.TlsParameters.TLSv1_2,
    "TLSV1_3": common_pb2.TlsParameters.TLSv1_3,
}


def _exact(values: Sequence[str]) -> list[string_pb2.StringMatcher]:
    return [string_pb2.StringMatcher(exact=value) for value in values]


# Envoy's deprecated untyped SAN matcher tries each of these SAN types in turn.
_UNTYPED_SAN_TYPES = (
    common_pb2.SubjectAltNameMatcher.DNS,
    common_pb2.SubjectAltNameMatcher.URI,
    common_pb2.SubjectAltNameMatcher.EMAIL,
    common_pb2.SubjectAltNameMatcher.IP_ADDRESS,
)


def match_sans(context: common_pb2.CertificateValidationContext, values: Sequence[str], *, typed: bool) -> None:
    """The SANs a peer certificate must carry, exactly. Istio writes the deprecated
    `match_subject_alt_names`, which its own proxy build takes silently and which matches a
    value against every SAN type; plain Envoy warns on every push, so for it (`typed`) they are
    `match_typed_subject_alt_names`: a URI (`scheme://...`, such as the SPIFFE ids Istio
    matches) as a URI SAN only, since no other SAN type can hold one, and any other value (a
    DestinationRule's `api.example.com`, an address, a mailbox) as each SAN type, just as the
    untyped field matches it."""
    _spell_sans(context, _exact(values), typed=typed)


def _spell_sans(context: common_pb2.CertificateValidationContext, matchers: Sequence[string_pb2.StringMatcher], *,
                typed: bool) -> None:
    """SAN matchers in plain Envoy's typed field or in istiod's deprecated one."""
    context.SetInParent()
    if not typed:
        context.match_subject_alt_names.extend(matchers)
        return
    for matcher in matchers:
        value = matcher.exact or matcher.prefix
        kinds = (common_pb2.SubjectAltNameMatcher.URI,) if "://" in value else _UNTYPED_SAN_TYPES
        for kind in kinds:
            context.match_typed_subject_alt_names.add(san_type=kind, matcher=matcher)


def _upstream_common() -> tls_pb2.CommonTlsContext:
    common = tls_pb2.CommonTlsContext()
    common.tls_params.tls_minimum_protocol_version = common_pb2.TlsParameters.TLSv1_2
    common.tls_params.tls_maximum_protocol_version = common_pb2.TlsParameters.TLSv1_3
    return common


SDS_DEFAULT_CONFIG = sds_secret_config(WORKLOAD_CERTIFICATE)
SDS_ROOT_CONFIG = sds_secret_config(ROOT_CERTIFICATE)
_UPSTREAM_TLS_TYPE = type_url_of(tls_pb2.UpstreamTlsContext)


def istio_mutual(sni: str, subject_alt_names: Sequence[str], *, h2: bool, metadata_exchange: bool,
                 typed_sans: bool = False) -> tls_pb2.UpstreamTlsContext:
    """The client side of Istio mTLS: workload cert `default`, roots `ROOTCA`, SPIFFE SANs."""
    context = tls_pb2.UpstreamTlsContext(sni=sni)
    common = context.common_tls_context
    common.CopyFrom(_upstream_common())
    if metadata_exchange:
        common.alpn_protocols.extend(ALPN_MESH_MX_H2 if h2 else ALPN_MESH_MX)
    else:
        common.alpn_protocols.extend(ALPN_MESH_H2 if h2 else ALPN_MESH)
    common.tls_certificate_sds_secret_configs.append(SDS_DEFAULT_CONFIG)
    combined = common.combined_validation_context
    match_sans(combined.default_validation_context, subject_alt_names, typed=typed_sans)
    combined.validation_context_sds_secret_config.CopyFrom(SDS_ROOT_CONFIG)
    return context


@functools.lru_cache(maxsize=16384)
def _istio_mutual_common(subject_alt_names: tuple[str, ...], h2: bool, metadata_exchange: bool, typed_sans: bool) -> bytes:
    return istio_mutual("", subject_alt_names, h2=h2, metadata_exchange=metadata_exchange,
                        typed_sans=typed_sans).SerializeToString(deterministic=True)


def istio_mutual_socket(sni: str, subject_alt_names: Sequence[str], *, h2: bool, metadata_exchange: bool,
                        typed_sans: bool = False) -> base_pb2.TransportSocket:
    """`istio_mutual(...)` as a transport socket, serialized at a fraction of the cost (see
    istio_mutual_bytes)."""
    value = istio_mutual_bytes(sni, subject_alt_names, h2=h2, metadata_exchange=metadata_exchange, typed_sans=typed_sans)
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=any_pb2.Any(type_url=_UPSTREAM_TLS_TYPE, value=value))


def istio_mutual_bytes(sni: str, subject_alt_names: Sequence[str], *, h2: bool, metadata_exchange: bool,
                       typed_sans: bool = False) -> bytes:
    """`istio_mutual(...)` serialized deterministically, without building it.

    Every cluster of a service shares the context except its SNI. The SNI-less context is
    serialized once and the SNI appended: protobuf merges concatenated messages, and because
    `sni` has the highest field number the bytes equal a deterministic serialization of the
    whole context.
    """
    value = _istio_mutual_common(tuple(subject_alt_names), h2, metadata_exchange, typed_sans)
    if sni:
        value += tls_pb2.UpstreamTlsContext(sni=sni).SerializeToString()
    return value


def user_tls(settings: ClientTLSSettings, *, h2: bool, service_accounts: Sequence[str] = (),
             typed_sans: bool = False) -> tls_pb2.UpstreamTlsContext | None:
    """DestinationRule `tls` with mode SIMPLE or MUTUAL (file certificates served over SDS)."""
    context = tls_pb2.UpstreamTlsContext(sni=settings.sni)
    common = context.common_tls_context
    common.CopyFrom(_upstream_common())
    sans = list(settings.subject_alt_names or service_accounts)
    if settings.credential_name:
        name = settings.credential_name
        common.tls_certificate_sds_secret_configs.append(credential_secret_config(f"kubernetes://{name}"))
        combined = common.combined_validation_context
        match_sans(combined.default_validation_context, sans, typed=typed_sans)
        combined.validation_context_sds_secret_config.CopyFrom(credential_secret_config(f"kubernetes://{name}-cacert"))
    else:
        if settings.mode == "MUTUAL":
            secret = file_certificate(settings.client_certificate, settings.private_key)
            common.tls_certificate_sds_secret_configs.append(sds_secret_config(secret))
        if settings.insecure_skip_verify:
            common.validation_context.SetInParent()
        else:
            roots = settings.ca_certificates or "system"
            combined = common.combined_validation_context
            match_sans(combined.default_validation_context, sans, typed=typed_sans)
            if settings.ca_crl:
                combined.default_validation_context.crl.filename = settings.ca_crl
            combined.validation_context_sds_secret_config.CopyFrom(sds_secret_config(file_root(roots)))
    if h2:
        common.alpn_protocols.extend(ALPN_H2_ONLY)
    return context


def socket(context: tls_pb2.UpstreamTlsContext | tls_pb2.DownstreamTlsContext) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=typed(context))


RAW_BUFFER = base_pb2.TransportSocket(name=RAW_BUFFER_SOCKET, typed_config=typed(raw_buffer_pb2.RawBuffer()))


def auto_mtls_matches(cluster: cluster_pb2.Cluster, transport_socket: base_pb2.TransportSocket) -> None:
    """Auto mTLS: TLS to endpoints labelled `tlsMode: istio`, plaintext to the rest."""
    istio = cluster.transport_socket_matches.add(name="tlsMode-istio")
    istio.match.fields["tlsMode"].string_value = "istio"
    istio.transport_socket.CopyFrom(transport_socket)
    plain = cluster.transport_socket_matches.add(name="tlsMode-disabled")
    plain.match.SetInParent()
    plain.transport_socket.CopyFrom(RAW_BUFFER)


@dataclass(frozen=True, slots=True)
class PeerValidation:
    """How a sidecar's inbound chains check a caller's certificate: a SPIFFE ID of one of
    `trust_domains` (the mesh's trust domain, then its aliases), under the roots of `ROOTCA`.

    `typed` spells the SAN matchers with Envoy's current field (`match_typed_subject_alt_names`,
    SAN type URI), as plain Envoy wants; istiod still emits the deprecated
    `match_subject_alt_names`, kept for the istio-proxy flavor so that output matches istiod's.
    """

    trust_domains: tuple[str, ...]
    typed: bool = True

    @classmethod
    def of(cls, trust_domains: Sequence[str], *, typed: bool = True) -> PeerValidation:
        """Istio's list from the trust domain and its aliases, in order: empty ones dropped,
        each kept once."""
        return cls(tuple(dict.fromkeys(d for d in trust_domains if d)), typed)

    def apply(self, context: common_pb2.CertificateValidationContext) -> None:
        _spell_sans(context, [string_pb2.StringMatcher(prefix=f"spiffe://{domain}/") for domain in self.trust_domains],
                    typed=self.typed)


def inbound_mtls(alpn: Sequence[str], validation: PeerValidation) -> tls_pb2.DownstreamTlsContext:
    """The server side of Istio mTLS on a sidecar's inbound chains (security.md §3.2): a client
    certificate required and checked against `ROOTCA` and the mesh's trust domains, the
    workload's own certificate `default`, Istio's TLS versions and cipher suites."""
    context = tls_pb2.DownstreamTlsContext()
    context.require_client_certificate.value = True
    common = context.common_tls_context
    common.alpn_protocols.extend(alpn)
    params = common.tls_params
    params.tls_minimum_protocol_version = common_pb2.TlsParameters.TLSv1_2
    params.tls_maximum_protocol_version = common_pb2.TlsParameters.TLSv1_3
    params.cipher_suites.extend(MESH_CIPHERS)
    common.tls_certificate_sds_secret_configs.append(SDS_DEFAULT_CONFIG)
    combined = common.combined_validation_context
    combined.default_validation_context.SetInParent()
    validation.apply(combined.default_validation_context)
    combined.validation_context_sds_secret_config.CopyFrom(SDS_ROOT_CONFIG)
    return context


def tls_version(name: str) -> int:
    return _TLS_VERSIONS.get(name, common_pb2.TlsParameters.TLS_AUTO)
