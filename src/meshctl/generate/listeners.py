"""LDS (outbound): per-port listeners and the virtualOutbound capture listener (spec §2.1–§2.5)."""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2

from meshctl.generate import filters, names
from meshctl.generate.chains import OutboundChain, filter_chain
from meshctl.generate.names import BLACKHOLE
from meshctl.generate.protobuf import typed
from meshctl.generate.context import ProxyContext
from meshctl.generate.tcproutes import tcp_chains
from meshctl import protocols
from meshctl.model.proxy import INTERCEPTION_TPROXY
from meshctl.model.scope import EgressScope
from meshctl.model.service import ALIAS, PASSTHROUGH as PASSTHROUGH_RESOLUTION, Service, ServicePort

__all__ = [
    "HTTP_ALPNS",
    "LOCALHOST",
    "TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECONDS",
    "VIRTUAL_OUTBOUND",
    "WILDCARD",
    "build_listeners",
    "tls_inspector",
    "virtual_outbound",
]

WILDCARD = "0.0.0.0"
LOCALHOST = "127.0.0.1"
VIRTUAL_OUTBOUND = "virtualOutbound"
_RESERVED_PORTS = frozenset({15001, 15006, 15021, 15090})
HTTP_ALPNS = ["http/1.1", "h2c"]
TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECONDS = 15
"""istiod's PILOT_GATEWAY_TRANSPORT_SOCKET_CONNECT_TIMEOUT (a feature flag, not mesh config)."""


@dataclass(slots=True)
class _Listener:
    bind: str
    port: int
    kind: str
    bind_to_port: bool
    chains: list[OutboundChain] = field(default_factory=list)
    locked: bool = False


def build_listeners(ctx: ProxyContext) -> list[listener_pb2.Listener]:
    """Outbound per-port listeners, then virtualOutbound (when traffic is captured), in Istio's order."""
    out = [_render(ctx, entry) for entry in _outbound(ctx)]
    if ctx.proxy.captures_traffic:
        out.append(virtual_outbound(ctx))
    return out


def _outbound(ctx: ProxyContext) -> list[_Listener]:
    listeners: dict[tuple[str, int], _Listener] = {}
    catch_all = [egress for egress in ctx.scope.egress if egress.catch_all]
    for egress in ctx.scope.egress:
        if not egress.catch_all:
            _explicit_port_listener(ctx, egress, listeners)
    for egress in catch_all:
        for service in egress.services:
            if service.resolution == ALIAS:
                continue
            for port in service.ports:
                _add_service_port(ctx, egress, service, port, listeners)
    return list(listeners.values())


def _bind_to_port(ctx: ProxyContext, egress: EgressScope) -> bool:
    return not ctx.proxy.captures_traffic or egress.capture_mode == "NONE"


def _explicit_port_listener(ctx: ProxyContext, egress: EgressScope, listeners: dict[tuple[str, int], _Listener]) -> None:
    """A Sidecar egress listener with a port: one listener, locked against the catch-all."""
    assert egress.port is not None
    real = _bind_to_port(ctx, egress)
    if real and ctx.unbindable(egress.port, "outbound"):
        return
    bind = egress.bind or (LOCALHOST if real else WILDCARD)
    kind = protocols.listener_class(egress.protocol)
    entry = _Listener(bind, egress.port, kind, real, locked=True)
    if kind == "HTTP":
        entry.chains.append(_http_chain(ctx, bind, egress.port, str(egress.port), egress.protocol))
    else:
        for service in egress.services:
            port = service.port(egress.port)
            if port is not None:
                for chain in tcp_chains(ctx, service, port, bind):
                    _merge_chain(entry, chain)
    listeners[(bind, egress.port)] = entry


def _add_service_port(ctx: ProxyContext, egress: EgressScope, service: Service, port: ServicePort,
                      listeners: dict[tuple[str, int], _Listener]) -> None:
    if port.protocol == protocols.UDP:
        return
    kind = protocols.listener_class(port.protocol)
    real = _bind_to_port(ctx, egress)
    if real and ctx.unbindable(port.port, "outbound"):
        return
    if real:
        binds = [egress.bind or LOCALHOST]
    elif kind == "HTTP":
        binds = [WILDCARD]
    elif service.has_vip and "/" not in service.address:
        binds = [service.address]
    elif service.resolution == PASSTHROUGH_RESOLUTION and service.from_kubernetes:
        binds = [ep.address for ep in ctx.snapshot.registry.endpoints(service, port) if ep.address != ctx.proxy.ip] or [WILDCARD]
    else:
        binds = [WILDCARD]
    for bind in binds:
        if bind == WILDCARD and port.port in _RESERVED_PORTS:
            continue
        key = (bind, port.port)
        existing = listeners.get(key)
        if existing is not None and existing.locked:
            continue
        if existing is None:
            existing = _Listener(bind, port.port, kind, real)
            listeners[key] = existing
        _merge(ctx, existing, service, port, kind, bind)


def _merge(ctx: ProxyContext, entry: _Listener, service: Service, port: ServicePort, kind: str, bind: str) -> None:
    """Istio's conflict rules for several services on one (bind, port)."""
    if kind == "HTTP":
        if entry.kind in ("HTTP", "AUTO") and any(c.http for c in entry.chains):
            return
        if entry.kind == "TCP" and entry.chains:
            entry.kind = "AUTO"
        entry.chains.append(_http_chain(ctx, bind, port.port, str(port.port), port.protocol))
        return
    if kind == "AUTO" and entry.kind == "HTTP" and entry.chains:
        entry.chains = []
    if kind == "AUTO":
        entry.kind = "AUTO"
        for chain in tcp_chains(ctx, service, port, bind):
            _merge_chain(entry, chain)
        if not any(c.http for c in entry.chains):
            rds = str(port.port) if bind == WILDCARD else f"{service.hostname}:{port.port}"
            entry.chains.append(_http_chain(ctx, bind, port.port, rds, port.protocol))
        return
    if entry.kind == "HTTP" and entry.chains:
        entry.kind = "AUTO"
    for chain in tcp_chains(ctx, service, port, bind):
        _merge_chain(entry, chain)


def _merge_chain(entry: _Listener, chain: OutboundChain) -> None:
    if any(existing.key() == chain.key() and not existing.http for existing in entry.chains):
        return
    entry.chains.append(chain)


def _http_chain(ctx: ProxyContext, bind: str, port: int, rds: str, port_protocol: str) -> OutboundChain:
    ctx.route_names.setdefault(rds, None)
    manager = filters.connection_manager(
        ctx.proxy,
        stat_prefix=f"outbound_{names.listener(bind, port)};",
        direction=filters.OUTBOUND,
        port_protocol=port_protocol,
        mesh=ctx.mesh,
        rds=rds,
    )
    return OutboundChain([filters.hcm_filter(manager)], alpn=list(HTTP_ALPNS), http=True)


def _passthrough_chain(ctx: ProxyContext) -> lc.FilterChain:
    chain = lc.FilterChain(name="PassthroughFilterChain")
    chain.filter_chain_match.SetInParent()
    chain.filters.append(filters.tcp_proxy(ctx.fallthrough_cluster, policy=filters.node_stream_policy(ctx.proxy)))
    return chain


def _render(ctx: ProxyContext, entry: _Listener) -> listener_pb2.Listener:
    listener = listener_pb2.Listener(name=names.listener(entry.bind, entry.port))
    socket = listener.address.socket_address
    socket.address = entry.bind
    socket.port_value = entry.port
    if not entry.bind_to_port:
        listener.bind_to_port.value = False
    listener.traffic_direction = base_pb2.OUTBOUND
    listener.continue_on_listener_filters_timeout = True
    if ctx.proxy.flags.outbound_exact_balance:
        listener.connection_balance_config.exact_balance.SetInParent()
    listener.listener_filters_timeout.SetInParent()
    chains = sorted(entry.chains, key=lambda c: c.http)
    match_all = [c for c in chains if c.matches_all]
    specific = [c for c in chains if not c.matches_all]
    rendered: list[lc.FilterChain] = []
    timeout = TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECONDS
    for chain in specific:
        rendered.append(filter_chain(chain, timeout))
    default: lc.FilterChain | None = None
    if match_all:
        if not specific:
            rendered.append(filter_chain(match_all[0], timeout))
        else:
            default = filter_chain(match_all[0], timeout)
    elif specific:
        default = _passthrough_chain(ctx)
    listener.filter_chains.extend(rendered)
    if default is not None:
        listener.default_filter_chain.CopyFrom(default)
    needs_tls = any(c.server_names for c in chains)
    needs_http = any(c.alpn for c in chains)
    if needs_tls:
        listener.listener_filters.append(tls_inspector())
    if needs_http:
        listener.listener_filters.add(name="envoy.filters.listener.http_inspector",
                                      typed_config=typed(http_inspector_pb2.HttpInspector()))
    return listener


def tls_inspector() -> lc.ListenerFilter:
    """The listener filter that reads SNI and ALPN, so filter chains can match on them."""
    tls = tls_inspector_pb2.TlsInspector()
    tls.initial_read_buffer_size.value = 512
    return lc.ListenerFilter(name="envoy.filters.listener.tls_inspector", typed_config=typed(tls))


def virtual_outbound(ctx: ProxyContext) -> listener_pb2.Listener:
    """0.0.0.0:15001: iptables sends all outbound traffic here; Envoy hands it to the listener
    matching the original destination, else these catch-all chains."""
    port = ctx.mesh.proxy_listen_port
    listener = listener_pb2.Listener(name=VIRTUAL_OUTBOUND, traffic_direction=base_pb2.OUTBOUND)
    listener.address.socket_address.address = WILDCARD
    listener.address.socket_address.port_value = port
    listener.use_original_dst.value = True
    if ctx.proxy.interception == INTERCEPTION_TPROXY:
        listener.transparent.value = True
    blackhole = listener.filter_chains.add(name="virtualOutbound-blackhole")
    blackhole.filter_chain_match.destination_port.value = port
    blackhole.filters.append(filters.tcp_proxy(BLACKHOLE))
    catch_all = listener.filter_chains.add(name="virtualOutbound-catchall-tcp")
    catch_all.filters.append(filters.tcp_proxy(ctx.fallthrough_cluster, policy=filters.node_stream_policy(ctx.proxy)))
    return listener
