"""Gateway: the ports, hosts and TLS settings of a load balancer at the edge of the mesh."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshctl import protocols
from meshctl.config.kinds.common import LABELS, TLS_VERSION, UINT32, UNIX_PREFIX, unix_address_problem
from meshctl.config.kinds.networking.fields import PORT_OR_ZERO, namespaced_host_problem
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, List, Report, Str
from meshctl.config.values import is_ip

__all__ = ["Gateway", "Port", "Server", "ServerTLSSettings", "TLSCertificate"]


def _certificate_count_rule(value: list[Any], path: FieldPath, report: Report) -> None:
    if len(value) > 2:
        report(path, "at most 2 certificates may be set")


def _has_client_ca(tls: dict[str, Any]) -> bool:
    return bool(
        tls.get("caCertificates")
        or tls.get("caCertCredentialName")
        or any(item.get("caCertificates") for item in tls.get("tlsCertificates") or [])
    )


def _server_tls_rule(tls: dict[str, Any], path: FieldPath, report: Report) -> None:
    """Istio's validateTLSOptions: what each server TLS mode needs and forbids."""
    mode = tls.get("mode") or "PASSTHROUGH"
    credential = tls.get("credentialName") or tls.get("credentialNames")
    if mode == "ISTIO_MUTUAL":
        for key in ("serverCertificate", "privateKey", "caCertificates", "credentialName", "credentialNames",
                    "tlsCertificates"):
            if tls.get(key):
                report((*path, key), f"{key} cannot be set with mode ISTIO_MUTUAL")
        return
    if mode not in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        return
    if tls.get("caCrl"):
        if credential:
            report((*path, "caCrl"), "caCrl cannot be combined with credentialName; put the CRL in the credential")
        elif mode == "SIMPLE":
            report((*path, "caCrl"), "caCrl is not supported with mode SIMPLE")
    if credential:
        return
    if not tls.get("tlsCertificates"):
        for key in ("serverCertificate", "privateKey"):
            if not tls.get(key):
                report((*path, key), f"mode {mode} needs {key} (or credentialName)")
    if mode != "SIMPLE" and not _has_client_ca(tls):
        report((*path, "caCertificates"), f"mode {mode} needs caCertificates (or credentialName)")


@message
class TLSCertificate(Message):
    """ServerTLSSettings.TLSCertificate: one of up to two certificate and key pairs."""

    server_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""


@message(oneof=[("credentialName", "credentialNames", "tlsCertificates")], rules=[_server_tls_rule])
class ServerTLSSettings(Message):
    https_redirect: bool = False
    mode: str = field(Enum("PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"))
    server_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""
    ca_crl: str = ""
    credential_name: str = ""
    credential_names: tuple[str, ...] = field(List(Str(min_len=1), min_items=1, rules=[_certificate_count_rule]))
    ca_cert_credential_name: str = ""
    tls_certificates: tuple[TLSCertificate, ...] = field(
        List(TLSCertificate.SCHEMA, min_items=1, rules=[_certificate_count_rule]))
    subject_alt_names: tuple[str, ...] = ()
    verify_certificate_spki: tuple[str, ...] = ()
    verify_certificate_hash: tuple[str, ...] = ()
    min_protocol_version: str = field(TLS_VERSION)
    max_protocol_version: str = field(TLS_VERSION)
    cipher_suites: tuple[str, ...] = ()


def _bind_problem(bind: str) -> str | None:
    if bind.startswith(UNIX_PREFIX):
        return unix_address_problem(bind[len(UNIX_PREFIX):])
    if bind and not is_ip(bind):
        return f"invalid bind address {bind!r}: must be an IP address or unix://path"
    return None


def _server_rule(server: dict[str, Any], path: FieldPath, report: Report) -> None:
    for index, host in enumerate(server.get("hosts") or []):
        problem = namespaced_host_problem(host, gateway=True)
        if problem:
            report((*path, "hosts", index), problem)
    port = server["port"]
    bind = server.get("bind") or ""
    unix = bind.startswith(UNIX_PREFIX)
    number = port.get("number") or 0
    if number == 0 and not unix:
        report((*path, "port", "number"), "port number must be between 1 and 65535")
    if unix and number:
        report((*path, "port", "number"), "port number must be 0 with a unix socket bind address")
    if port.get("targetPort"):
        report((*path, "port", "targetPort"), "targetPort has no effect on gateways")
    problem = _bind_problem(bind)
    if problem:
        report((*path, "bind"), problem)
    protocol = protocols.parse(port.get("protocol") or "")
    if protocol == protocols.UNSUPPORTED:
        report((*path, "port", "protocol"),
               f"invalid protocol {port.get('protocol')!r}; use one of HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, "
               "TLS, TCP, MONGO, REDIS, MYSQL")
        return
    tls = server.get("tls")
    if protocol in protocols.TLS_FAMILY and tls is None:
        report((*path, "tls"), f"{protocol} servers need tls settings")
    elif protocol not in protocols.TLS_FAMILY and tls is not None:
        if protocol not in protocols.HTTP_FAMILY:
            report((*path, "tls"), "tls settings need an HTTPS or TLS port")
        elif (tls.get("mode") or "PASSTHROUGH") not in ("PASSTHROUGH", "AUTO_PASSTHROUGH") or any(
                tls.get(key) for key in ("caCertificates", "privateKey", "serverCertificate")):
            report((*path, "tls"), "plain-text HTTP servers only take tls.httpsRedirect")


@message(required=["protocol", "name"])
class Port(Message):
    """A server's port: `number` 0 only with a unix socket `bind`."""

    number: int = field(PORT_OR_ZERO)
    protocol: str = ""
    name: str = ""
    target_port: int = field(UINT32)


@message(required=["port", "hosts"], rules=[_server_rule])
class Server(Message):
    port: Port
    bind: str = ""
    hosts: tuple[str, ...] = field(List(Str(min_len=1)))
    tls: ServerTLSSettings | None = None
    default_endpoint: str = ""
    name: str = ""


def _gateway_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    seen: set[str] = set()
    for index, server in enumerate(spec.get("servers") or []):
        name = server["port"]["name"]
        if name in seen:
            report((*path, "servers", index, "port", "name"),
                   f"duplicate port name {name!r}: port names must be unique across servers")
        seen.add(name)


@message(required=["servers"], rules=[_gateway_rule])
class Gateway(Message):
    servers: tuple[Server, ...] = ()
    selector: Mapping[str, str] = field(LABELS)
