"""LDS for gateways: one listener per (bind, port) the merged servers listen on (Istio's
buildGatewayListeners).

A plain-text HTTP port is one filter chain whose connection manager asks RDS for `http.<port>`.
Any other port gets a chain per server: HTTPS servers that terminate TLS match their SNI names
and carry their certificate; TLS and TCP servers forward connections with tcp_proxy to what the
VirtualServices bound to their gateway say (by SNI when passed through). A listener that ends up
with no chain (a TCP server no VirtualService routes) is left out, with a warning, as in Istio.
The security policies selecting the gateway (AuthorizationPolicy, RequestAuthentication) add
their HTTP filters to every connection manager and their network filters before every
tcp_proxy, as Istio's gateway chains carry them.

Listeners are sorted by name (Istio builds them from a map, in no order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from meshctl import protocols
from meshctl.config.kinds.networking.virtual_service import RouteDestination
from meshctl.generate import filters, names, tls
from meshctl.generate.context import ProxyContext
from meshctl.generate.gateway.tls import secret_names, server_tls_context
from meshctl.generate.inbound_policy import inbound_policy
from meshctl.generate.listeners import WILDCARD, tls_inspector
from meshctl.generate.tcproutes import route_filter
from meshctl.hostnames import intersects
from meshctl.model.gateway import (
    AUTO_PASSTHROUGH,
    ISTIO_MUTUAL,
    GatewayServer,
    MergedGateway,
    ServerPort,
    claim_hosts,
    virtual_services_for_gateway,
)
from meshctl.model.istio import PARENTS_ANNOTATION, VirtualServiceView, gateway_name

__all__ = [
    "GatewayChain",
    "TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECONDS",
    "filter_chain",
    "gateway_connection_manager",
    "gateway_listeners",
    "render_listener",
    "tcp_filters",
]

# Istio's defaultGatewayTransportSocketConnectTimeout: a slow TLS handshake is cut off.
TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECONDS = 15


@dataclass(slots=True)
class GatewayChain:
    """One filter chain of a gateway listener: what it matches (SNI, ALPN), the TLS it
    terminates, and its network filters."""

    filters: list[lc.Filter]
    sni_hosts: list[str] = field(default_factory=list)
    alpn: list[str] = field(default_factory=list)
    tls_context: tls_pb2.DownstreamTlsContext | None = None


@dataclass(slots=True)
class _Listener:
    bind: str
    port: int
    chains: list[GatewayChain] = field(default_factory=list)


def gateway_listeners(ctx: ProxyContext, merged: MergedGateway, secrets: dict[str, None]) -> list[listener_pb2.Listener]:
    """The gateway's listeners; the SDS secrets their TLS contexts fetch over ADS are added to
    `secrets` (in the order first named), for the control plane to serve."""
    listeners: dict[str, _Listener] = {}
    passthrough_sni: dict[int, dict[str, str]] = {}
    for port in merged.server_ports:
        if ctx.proxy.flags.unprivileged and port.number < 1024:
            ctx.warnings.append(f"gateway port {port.number} skipped: an unprivileged pod cannot bind ports below 1024")
            continue
        servers = merged.servers.get(port)
        if servers is None:
            continue
        bind = port.bind or WILDCARD
        entry = listeners.setdefault(names.listener(bind, port.number), _Listener(bind, port.number))
        if protocols.parse(port.protocol) in protocols.HTTP_FAMILY:
            stat = f"outbound_{names.listener(bind, port.number)};"
            entry.chains.append(_http_chain(ctx, servers.route_name, stat, protocols.parse(port.protocol)))
            continue
        for server in servers.servers:
            entry.chains.extend(_server_chains(ctx, merged, server, port, bind, passthrough_sni))
    out: list[listener_pb2.Listener] = []
    for name in sorted(listeners):
        entry = listeners[name]
        if not entry.chains:
            ctx.warnings.append(f"gateway listener {name} omitted: none of its servers has a route "
                                "(a TCP or TLS server needs a VirtualService bound to its gateway)")
            continue
        out.append(render_listener(entry.bind, entry.port, entry.chains))
        for chain in entry.chains:
            if chain.tls_context is not None:
                secrets.update(dict.fromkeys(secret_names(chain.tls_context)))
    return out


def render_listener(bind: str, port: int, chains: list[GatewayChain]) -> listener_pb2.Listener:
    """A gateway listener as Istio builds it: bound, outbound, a TLS inspector when a chain
    matches SNI or ALPN (no listener filter timeout: Envoy's 15 s default applies)."""
    listener = listener_pb2.Listener(name=names.listener(bind, port), traffic_direction=base_pb2.OUTBOUND)
    listener.address.socket_address.address = bind
    listener.address.socket_address.port_value = port
    if any(chain.sni_hosts or (chain.tls_context is not None and chain.tls_context.common_tls_context.alpn_protocols)
           for chain in chains):
        listener.listener_filters.append(tls_inspector())
    listener.filter_chains.extend(filter_chain(chain) for chain in chains)
    return listener


def filter_chain(chain: GatewayChain) -> lc.FilterChain:
    """A chain matching its SNI names (sorted; none when one is `*`) and ALPN, or everything."""
    out = lc.FilterChain()
    match = out.filter_chain_match
    if chain.sni_hosts and "*" not in chain.sni_hosts:
        match.server_names.extend(sorted(chain.sni_hosts))
    match.application_protocols.extend(chain.alpn)
    if match.ByteSize() == 0:
        out.ClearField("filter_chain_match")
    if chain.tls_context is not None:
        out.transport_socket.CopyFrom(tls.socket(chain.tls_context))
    out.filters.extend(chain.filters)
    out.transport_socket_connect_timeout.seconds = TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECONDS
    return out


def gateway_connection_manager(ctx: ProxyContext, *, rds: str, stat_prefix: str,
                               port_protocol: str) -> hcm_pb2.HttpConnectionManager:
    """The outbound connection manager, with what a gateway adds (buildGatewayConnectionManager):
    the client's address is the remote address, client certificate details are sanitized and
    set anew, the server name and request ids of the gateway's proxyHeaders (`server:
    istio-envoy` by default), and HTTP/1 options. The AuthorizationPolicies and
    RequestAuthentications selecting the gateway run first, as on a sidecar's inbound chains."""
    manager = filters.connection_manager(ctx.proxy, stat_prefix=stat_prefix, direction=filters.OUTBOUND,
                                         port_protocol=port_protocol, mesh=ctx.mesh, rds=rds,
                                         policy=inbound_policy(ctx).http, gateway=True)
    manager.use_remote_address.value = True
    manager.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
    details = manager.set_current_client_cert_details
    details.subject.value = True
    details.cert = True
    details.dns = True
    details.uri = True
    manager.http_protocol_options.SetInParent()
    ctx.route_names.setdefault(rds, None)
    return manager


def _http_chain(ctx: ProxyContext, rds: str, stat_prefix: str, protocol: str) -> GatewayChain:
    manager = gateway_connection_manager(ctx, rds=rds, stat_prefix=stat_prefix, port_protocol=protocol)
    return GatewayChain([filters.hcm_filter(manager)])


def _server_chains(ctx: ProxyContext, merged: MergedGateway, server: GatewayServer, port: ServerPort, bind: str,
                   passthrough_sni: dict[int, dict[str, str]]) -> list[GatewayChain]:
    info = merged.tls_info.get(server)
    sni = list(info.sni_hosts) if info is not None else []
    if server.protocol == protocols.HTTPS and server.tls is not None and not server.passthrough:
        assert info is not None
        stat = server.server.name or f"outbound_{names.listener(bind, port.number)};"
        manager = gateway_connection_manager(ctx, rds=info.route_name, stat_prefix=stat, port_protocol=server.protocol)
        return [GatewayChain([filters.hcm_filter(manager)], sni_hosts=sni,
                             tls_context=server_tls_context(server.tls))]
    if server.tls is None:
        found = tcp_filters(ctx, server)
        if found:
            return [GatewayChain(found)]
        ctx.warnings.append(f"Gateway {server.gateway} port {server.number}: no VirtualService routes TCP to it")
        return []
    if not server.passthrough:
        found = tcp_filters(ctx, server)
        if found:
            return [GatewayChain(found, sni_hosts=sni, tls_context=server_tls_context(server.tls, tcp_terminated=True))]
        ctx.warnings.append(f"Gateway {server.gateway} port {server.number}: no VirtualService routes TCP to it")
        return []
    if server.tls_mode == AUTO_PASSTHROUGH:
        from meshctl.generate.gateway.autopassthrough import auto_passthrough_chains

        return auto_passthrough_chains(ctx, sni)
    return _passthrough_chains(ctx, server, port.number, passthrough_sni)


def _bound(ctx: ProxyContext, server: GatewayServer) -> list[VirtualServiceView]:
    return virtual_services_for_gateway(ctx.snapshot.virtual_services, ctx.proxy.namespace, server.gateway)


def _serves(server: GatewayServer, vs: VirtualServiceView) -> bool:
    """Istio's pickMatchingGatewayHosts: a VS host overlaps a server host, and a server host
    qualified with a namespace only counts for VirtualServices of that namespace."""
    for vs_host in vs.hosts:
        for host in server.hosts:
            ns, slash, name = host.partition("/")
            if slash and ns != vs.namespace:
                continue
            if intersects(name if slash else host, vs_host):
                return True
    return False


def _l4_applies(port: int, gateways: tuple[str, ...], server: GatewayServer, namespace: str) -> bool:
    """A TCP or TLS match on a gateway checks only its port and its gateways."""
    if port and port != server.number:
        return False
    return not gateways or any(gateway_name(name, namespace) == server.gateway for name in gateways)


def tcp_filters(ctx: ProxyContext, server: GatewayServer) -> list[lc.Filter]:
    """tcp_proxy for the first bound VirtualService with a TCP rule for this server (or, for a
    VirtualService made of a TLSRoute, a TLS rule, when the server terminates TLS)."""
    for vs in _bound(ctx, server):
        if not _serves(server, vs):
            continue
        for rule in vs.spec.tcp:
            if (not rule.match or any(_l4_applies(m.port, m.gateways, server, vs.namespace) for m in rule.match)) \
                    and rule.route:
                return _forward(ctx, server, vs, rule.route)
        if vs.resource.annotations.get(PARENTS_ANNOTATION, "").startswith("TLSRoute/"):
            for tls_rule in vs.spec.tls:
                if any(_l4_applies(m.port, m.gateways, server, vs.namespace) for m in tls_rule.match):
                    return _forward(ctx, server, vs, tls_rule.route)
    return []


def _forward(ctx: ProxyContext, server: GatewayServer, vs: VirtualServiceView,
             routes: Sequence[RouteDestination]) -> list[lc.Filter]:
    out: list[lc.Filter] = []
    if ctx.proxy.istio_extensions and server.tls_mode == ISTIO_MUTUAL:
        out.append(filters.network_metadata_exchange())
    out.extend(inbound_policy(ctx).tcp)
    out.append(route_filter(ctx, vs, routes, server.number))
    return out


def _passthrough_chains(ctx: ProxyContext, server: GatewayServer, listener_port: int,
                        seen: dict[int, dict[str, str]]) -> list[GatewayChain]:
    """One chain per matching TLS rule of the bound VirtualServices, by its SNI hosts; an SNI
    host already routed on this port and bind is not routed twice (Envoy would refuse)."""
    chains: list[GatewayChain] = []
    known = seen.setdefault(listener_port, {})
    for vs in _bound(ctx, server):
        if not _serves(server, vs):
            continue
        for index, rule in enumerate(vs.spec.tls):
            if not rule.route:
                continue
            for match in rule.match:
                if not _l4_applies(match.port, match.gateways, server, vs.namespace):
                    continue
                duplicates = claim_hosts(known, match.sni_hosts, server.bind)
                if duplicates:
                    ctx.warnings.append(f"{vs.resource.ref()}: tls rule {index} skipped on gateway {server.gateway} "
                                        f"port {server.number}: SNI {', '.join(duplicates)} is already routed")
                    continue
                forward = route_filter(ctx, vs, rule.route, server.number)
                chains.append(GatewayChain([*inbound_policy(ctx).tcp, forward], sni_hosts=list(match.sni_hosts)))
    return chains
