"""The TLS a gateway server terminates: its DownstreamTlsContext (Istio's BuildListenerTLSContext).

A server's certificate comes from one of three places, and its secret name says which: a
`credentialName` is a Kubernetes Secret the control plane serves over ADS (`kubernetes://NAME`);
certificate files in the gateway pod are read by the node agent (`file-cert:CERT~KEY`); and
ISTIO_MUTUAL uses the gateway's own workload certificate (`default`, roots `ROOTCA`).
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from meshctl.config.kinds.networking.gateway import ServerTLSSettings
from meshctl.generate.core import credential_secret_config, sds_secret_config
from meshctl.generate.tls import INBOUND_ALPN_HTTP, INBOUND_ALPN_TCP, tls_version
from meshctl.model.gateway import ISTIO_MUTUAL, MUTUAL, OPTIONAL_MUTUAL, SIMPLE
from meshctl.model.secrets import ROOT_CERTIFICATE, WORKLOAD_CERTIFICATE, file_certificate, file_root

__all__ = [
    "BUILTIN_SECRET",
    "CA_SUFFIX",
    "KUBERNETES_GATEWAY_SECRET",
    "KUBERNETES_SECRET",
    "credential_resource",
    "secret_names",
    "server_tls_context",
]

KUBERNETES_SECRET = "kubernetes://"
KUBERNETES_GATEWAY_SECRET = "kubernetes-gateway://"
BUILTIN_SECRET = "builtin://"
CA_SUFFIX = "-cacert"
# Secret name prefixes Istio keeps as they are (pilot/pkg/model/credentials).
_KEPT_PREFIXES = (KUBERNETES_SECRET, KUBERNETES_GATEWAY_SECRET, "configmap://", "invalid://")


def credential_resource(name: str) -> str:
    """The SDS resource a credentialName names: a bare name is a Kubernetes Secret of the
    gateway's namespace (`kubernetes://NAME`); explicit schemes are kept."""
    return name if name.startswith(_KEPT_PREFIXES) else KUBERNETES_SECRET + name


def _credential_config(name: str) -> secret_pb2.SdsSecretConfig:
    """`builtin://` is the gateway's own workload certificate (and `builtin://-cacert` its
    roots), from the agent; every other credential comes over ADS."""
    if name == BUILTIN_SECRET:
        return sds_secret_config(WORKLOAD_CERTIFICATE)
    if name == BUILTIN_SECRET + CA_SUFFIX:
        return sds_secret_config(ROOT_CERTIFICATE)
    config: secret_pb2.SdsSecretConfig = credential_secret_config(credential_resource(name))
    return config


def server_tls_context(tls: ServerTLSSettings, *, tcp_terminated: bool = False) -> tls_pb2.DownstreamTlsContext:
    """The TLS context of a server that terminates TLS (any mode but the passthrough ones).

    `tcp_terminated` is a TLS server whose plain text goes on as TCP: with ISTIO_MUTUAL, it also
    offers `istio-peer-exchange`, as a sidecar's inbound TCP chains do.
    """
    mode = tls.mode or SIMPLE
    context = tls_pb2.DownstreamTlsContext()
    common = context.common_tls_context
    alpn = INBOUND_ALPN_TCP if mode == ISTIO_MUTUAL and tcp_terminated else INBOUND_ALPN_HTTP
    common.alpn_protocols.extend(alpn)
    context.require_client_certificate.value = mode in (MUTUAL, ISTIO_MUTUAL)
    validate_client = mode in (MUTUAL, ISTIO_MUTUAL, OPTIONAL_MUTUAL)
    if mode == ISTIO_MUTUAL:
        _files_or_workload(common, tls, "", "", validate_client, workload=True)
    elif tls.credential_names or tls.credential_name:
        _credentials(common, tls, mode)
    else:
        _files_or_workload(common, tls, tls.server_certificate, tls.private_key, validate_client)
    if mode in (SIMPLE, MUTUAL, OPTIONAL_MUTUAL):
        _tls_parameters(common, tls)
    return context


def _credentials(common: tls_pb2.CommonTlsContext, tls: ServerTLSSettings, mode: str) -> None:
    """credentialName(s): certificates over ADS; with client validation, the CA certificate
    from `<first credential>-cacert` (or `caCertCredentialName`)."""
    names = tls.credential_names or (tls.credential_name,)
    common.tls_certificate_sds_secret_configs.extend(_credential_config(name) for name in names)
    ca_name = tls.ca_cert_credential_name or names[0] + CA_SUFFIX
    if mode in (MUTUAL, OPTIONAL_MUTUAL):
        combined = common.combined_validation_context
        default = combined.default_validation_context
        default.SetInParent()
        _peer_checks(default, tls)
        combined.validation_context_sds_secret_config.CopyFrom(_credential_config(ca_name))
    elif tls.subject_alt_names:
        common.validation_context.match_subject_alt_names.extend(_exact(tls.subject_alt_names))


def _files_or_workload(common: tls_pb2.CommonTlsContext, tls: ServerTLSSettings, certificate: str, key: str,
                       validate_client: bool, workload: bool = False) -> None:
    """Certificates the agent serves: files in the gateway pod (`file-cert:`), or, without
    files, the workload certificate. Client certificates are checked against the server's
    `caCertificates` file, else the mesh roots."""
    ca_file = "" if workload else tls.ca_certificates
    pairs = [(item.server_certificate, item.private_key) for item in tls.tls_certificates] if not workload else []
    if not pairs:
        pairs = [(certificate, key)]
    for cert, private in pairs:
        name = file_certificate(cert, private) if cert and private else WORKLOAD_CERTIFICATE
        common.tls_certificate_sds_secret_configs.append(sds_secret_config(name))
    if not validate_client:
        return
    combined = common.combined_validation_context
    default = combined.default_validation_context
    default.SetInParent()
    default.match_subject_alt_names.extend(_exact(tls.subject_alt_names))
    if tls.ca_crl:
        default.crl.filename = tls.ca_crl
    combined.validation_context_sds_secret_config.CopyFrom(
        sds_secret_config(file_root(ca_file) if ca_file else ROOT_CERTIFICATE))


def _peer_checks(context: common_pb2.CertificateValidationContext, tls: ServerTLSSettings) -> None:
    context.match_subject_alt_names.extend(_exact(tls.subject_alt_names))
    context.verify_certificate_spki.extend(tls.verify_certificate_spki)
    context.verify_certificate_hash.extend(tls.verify_certificate_hash)


def _tls_parameters(common: tls_pb2.CommonTlsContext, tls: ServerTLSSettings) -> None:
    """Versions and ciphers the server asks for (`tls_params` only when it asks for any)."""
    if tls.min_protocol_version and tls.min_protocol_version != "TLS_AUTO":
        common.tls_params.tls_minimum_protocol_version = tls_version(tls.min_protocol_version)
    ciphers = list(dict.fromkeys(tls.cipher_suites))
    if ciphers:
        common.tls_params.cipher_suites.extend(ciphers)
    if tls.max_protocol_version and tls.max_protocol_version != "TLS_AUTO":
        common.tls_params.tls_maximum_protocol_version = tls_version(tls.max_protocol_version)


def _exact(values: Sequence[str]) -> list[string_pb2.StringMatcher]:
    return [string_pb2.StringMatcher(exact=value) for value in values]


def secret_names(context: tls_pb2.DownstreamTlsContext) -> list[str]:
    """The SDS secrets a context fetches over ADS (those the control plane must serve)."""
    common = context.common_tls_context
    configs = list(common.tls_certificate_sds_secret_configs)
    if common.HasField("combined_validation_context"):
        configs.append(common.combined_validation_context.validation_context_sds_secret_config)
    return [config.name for config in configs if config.sds_config.HasField("ads")]
