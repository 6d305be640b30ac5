"""Sidecar: what one workload's proxy listens on and which services it imports."""

from __future__ import annotations

from typing import Any

from meshctl.config.kinds.common import (
    UINT32,
    UNIX_PREFIX,
    NetworkWorkloadSelector,
    is_istio_label,
    unix_address_problem,
)
from meshctl.config.kinds.networking.destination_rule import ConnectionPoolSettings
from meshctl.config.kinds.networking.fields import (
    PORT_OR_ZERO,
    Destination,
    fqdn_only_problem,
    namespaced_host_problem,
    protocol_problem,
)
from meshctl.config.kinds.networking.gateway import ServerTLSSettings
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, List, Report, Str
from meshctl.config.values import is_ip

__all__ = [
    "CAPTURE_MODE",
    "IstioEgressListener",
    "IstioIngressListener",
    "OutboundTrafficPolicy",
    "SIDECAR_INGRESS_TLS",
    "Sidecar",
    "SidecarPort",
    "split_host_port",
]

CAPTURE_MODE = Enum("DEFAULT", "IPTABLES", "NONE")


@message
class SidecarPort(Message):
    """A listener's port; `number` is None when not given (an egress catch-all takes no port)."""

    number: int | None = field(PORT_OR_ZERO)
    protocol: str = ""
    name: str = ""
    target_port: int = field(UINT32)


def split_host_port(text: str) -> tuple[str, str] | None:
    """Go's net.SplitHostPort for the forms Istio accepts: `host:port`, `[v6]:port`, `:port`."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return None
        return host, rest[1:]
    host, colon, port = text.rpartition(":")
    if not colon or ":" in host:
        return None
    return host, port


def _sidecar_port_rule(listener: dict[str, Any], path: FieldPath, report: Report) -> None:
    """What ingress and egress listeners share: port name, protocol, targetPort."""
    port = listener["port"]
    if port.get("name") and not is_istio_label(port["name"]):
        report((*path, "port", "name"), f"invalid port name {port['name']!r}: must be a DNS label")
    problem = protocol_problem(port.get("protocol"))
    if problem:
        report((*path, "port", "protocol"), problem)
    if port.get("targetPort"):
        report((*path, "port", "targetPort"), "targetPort has no effect on Sidecars")


def _default_endpoint_problem(endpoint: str) -> str | None:
    if endpoint.startswith(UNIX_PREFIX):
        return unix_address_problem(endpoint[len(UNIX_PREFIX):])
    parts = split_host_port(endpoint)
    if parts is None or parts[0] not in ("", "127.0.0.1", "0.0.0.0", "::1", "::"):
        return "defaultEndpoint must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix://path"
    if not parts[1].isdigit() or not 1 <= int(parts[1]) <= 65535:
        return f"defaultEndpoint port {parts[1]!r} must be a number between 1 and 65535"
    return None


def _sidecar_ingress_tls_rule(tls: dict[str, Any], path: FieldPath, report: Report) -> None:
    for key in ("subjectAltNames", "httpsRedirect", "credentialName"):
        if tls.get(key):
            report((*path, key), f"{key} is not supported on Sidecar ingress")
    mode = tls.get("mode")
    if mode in ("ISTIO_MUTUAL", "AUTO_PASSTHROUGH"):
        report((*path, "mode"), f"mode {mode} is not allowed on Sidecar ingress")


SIDECAR_INGRESS_TLS = ServerTLSSettings.SCHEMA.extend(
    rules=[_sidecar_ingress_tls_rule, *ServerTLSSettings.SCHEMA.rules])


def _ingress_rule(listener: dict[str, Any], path: FieldPath, report: Report) -> None:
    _sidecar_port_rule(listener, path, report)
    if not listener["port"].get("number"):
        report((*path, "port", "number"), "port number must be between 1 and 65535")
    bind = listener.get("bind") or ""
    if bind and not is_ip(bind):
        report((*path, "bind"), f"invalid bind address {bind!r}: must be an IP address")
    endpoint = listener.get("defaultEndpoint")
    problem = _default_endpoint_problem(endpoint) if endpoint else None
    if problem:
        report((*path, "defaultEndpoint"), problem)


def _egress_rule(listener: dict[str, Any], path: FieldPath, report: Report) -> None:
    for index, host in enumerate(listener.get("hosts") or []):
        problem = namespaced_host_problem(host, gateway=False)
        if problem:
            report((*path, "hosts", index), problem)
    if listener.get("port") is None:
        return
    _sidecar_port_rule(listener, path, report)
    bind = listener.get("bind") or ""
    if listener["port"].get("number"):
        if bind and not is_ip(bind):
            report((*path, "bind"), f"invalid bind address {bind!r}: must be an IP address")
        return
    if not bind.startswith(UNIX_PREFIX):
        report((*path, "bind"), "a listener with port number 0 needs a unix://path bind address")
    else:
        problem = unix_address_problem(bind[len(UNIX_PREFIX):])
        if problem:
            report((*path, "bind"), problem)
    if listener.get("captureMode") not in (None, "DEFAULT", "NONE"):
        report((*path, "captureMode"), "captureMode must be DEFAULT or NONE for a unix socket listener")


def _ingress_list_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    seen: set[int] = set()
    for index, listener in enumerate(value):
        number = listener["port"].get("number") or 0
        if number in seen:
            report((*path, index, "port", "number"), f"port {number} is used by another ingress listener")
        seen.add(number)


def _egress_list_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    catch_all = False
    numbers: set[int] = set()
    sockets: set[str] = set()
    for index, listener in enumerate(value):
        port = listener.get("port")
        if port is None:
            if catch_all:
                report((*path, index), "only one egress listener may omit port")
            elif index != len(value) - 1:
                report((*path, index), "the egress listener without port must be the last one")
            catch_all = True
            continue
        number = port.get("number") or 0
        if number:
            if number in numbers:
                report((*path, index, "port", "number"), f"port {number} is used by another egress listener")
            numbers.add(number)
        else:
            bind = listener.get("bind") or ""
            if bind in sockets:
                report((*path, index, "bind"), f"unix socket {bind!r} is used by another egress listener")
            sockets.add(bind)


def _outbound_policy_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    proxy = value.get("egressProxy")
    if proxy is None:
        return
    if value.get("mode") != "ALLOW_ANY":
        report((*path, "egressProxy"), "egressProxy needs mode ALLOW_ANY")
        return
    problem = fqdn_only_problem(proxy["host"])
    if problem:
        report((*path, "egressProxy", "host"), problem)
    if proxy.get("port") is None:
        report((*path, "egressProxy", "port"), "egressProxy needs a port")


@message(required=["port"], rules=[_ingress_rule])
class IstioIngressListener(Message):
    port: SidecarPort
    bind: str = ""
    capture_mode: str = field(CAPTURE_MODE)
    default_endpoint: str = ""
    tls: ServerTLSSettings | None = field(SIDECAR_INGRESS_TLS)
    connection_pool: ConnectionPoolSettings | None = None


@message(required=["hosts"], rules=[_egress_rule])
class IstioEgressListener(Message):
    """`port` None makes the catch-all listener: every port not named by another one."""

    port: SidecarPort | None = None
    bind: str = ""
    capture_mode: str = field(CAPTURE_MODE)
    hosts: tuple[str, ...] = field(List(Str(min_len=1)))


@message(rules=[_outbound_policy_rule])
class OutboundTrafficPolicy(Message):
    mode: str = field(Enum("REGISTRY_ONLY", "ALLOW_ANY"))
    egress_proxy: Destination | None = None


def _sidecar_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    parts = ("egress", "ingress", "outboundTrafficPolicy", "inboundConnectionPool")
    if not any(spec.get(key) for key in parts):
        report(path, "a Sidecar must set at least one of " + ", ".join(parts))


@message(rules=[_sidecar_rule])
class Sidecar(Message):
    workload_selector: NetworkWorkloadSelector | None = None
    ingress: tuple[IstioIngressListener, ...] = field(List(IstioIngressListener.SCHEMA, rules=[_ingress_list_rule]))
    egress: tuple[IstioEgressListener, ...] = field(List(IstioEgressListener.SCHEMA, rules=[_egress_list_rule]))
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
    inbound_connection_pool: ConnectionPoolSettings | None = None
