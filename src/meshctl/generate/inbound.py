"""LDS (inbound): virtualInbound on 15006 with its mTLS-aware chains (translation-spec §2.7).

Which chains a port gets depends on its PeerAuthentication mode and protocol: STRICT accepts only
Istio mTLS, PERMISSIVE accepts mTLS and plaintext side by side, DISABLE only plaintext. Each
chain matches on transport (tls/raw_buffer) and ALPN, so one listener serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.original_src.v3 import original_src_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2

from meshctl.generate import filters, names, tls
from meshctl.generate.names import BLACKHOLE, INBOUND_PASSTHROUGH
from meshctl.generate.protobuf import typed
from meshctl.generate.context import InboundPort, ProxyContext
from meshctl.generate.inbound_policy import inbound_policy
from meshctl import protocols
from meshctl.model.proxy import INTERCEPTION_TPROXY
from meshctl.model.snapshot import DISABLE, PERMISSIVE, STRICT

VIRTUAL_INBOUND = "virtualInbound"
TPROXY_MARK = 1337  # Istio's original_src mark; istio-iptables routes packets with it back to Envoy
HTTP_PLAIN_ALPNS = ["http/1.1", "h2c"]


@dataclass(frozen=True, slots=True)
class ChainOption:
    """One filter chain variant: transport, ALPNs, whether Envoy terminates mTLS, HTTP or TCP."""

    transport: str
    alpn: tuple[str, ...]
    terminate: bool
    http: bool


_MTLS_ALL = tuple(tls.ISTIO_ALL_ALPNS)
_MTLS_HTTP = tuple(tls.ISTIO_HTTP_ALPNS)
_OPTIONS = {
    (STRICT, "HTTP"): [ChainOption("tls", (), True, True)],
    (STRICT, "TCP"): [ChainOption("tls", (), True, False)],
    (STRICT, "AUTO"): [ChainOption("tls", _MTLS_HTTP, True, True), ChainOption("tls", (), True, False)],
    (PERMISSIVE, "HTTP"): [ChainOption("tls", _MTLS_ALL, True, True), ChainOption("raw_buffer", (), False, True)],
    (PERMISSIVE, "TCP"): [
        ChainOption("tls", _MTLS_ALL, True, False),
        ChainOption("tls", (), False, False),
        ChainOption("raw_buffer", (), False, False),
    ],
    (PERMISSIVE, "AUTO"): [
        ChainOption("tls", _MTLS_HTTP, True, True),
        ChainOption("raw_buffer", tuple(HTTP_PLAIN_ALPNS), False, True),
        ChainOption("tls", ("istio-peer-exchange", "istio"), True, False),
        ChainOption("raw_buffer", (), False, False),
        ChainOption("tls", (), False, False),
    ],
    (DISABLE, "HTTP"): [ChainOption("raw_buffer", (), False, True)],
    (DISABLE, "TCP"): [ChainOption("raw_buffer", (), False, False)],
    (DISABLE, "AUTO"): [
        ChainOption("raw_buffer", tuple(HTTP_PLAIN_ALPNS), False, True),
        ChainOption("raw_buffer", (), False, False),
    ],
}


def _mode(ctx: ProxyContext, port: int | None) -> str:
    workload = ctx.proxy.workload
    labels = workload.labels if workload is not None else ctx.proxy.labels
    mode = ctx.snapshot.mtls_mode(ctx.proxy.namespace, labels, port)
    return mode if mode in (STRICT, PERMISSIVE, DISABLE) else PERMISSIVE


def build_inbound_listeners(ctx: ProxyContext) -> list[listener_pb2.Listener]:
    """virtualInbound when traffic is captured; real bound listeners from Sidecar ingress otherwise."""
    ports = ctx.inbound_ports()
    if ctx.proxy.captures_traffic:
        return [virtual_inbound(ctx, ports)]
    out = []
    for port in ports:
        if not ctx.scope.ingress:
            continue
        bind = port.bind or "0.0.0.0"
        listener = listener_pb2.Listener(name=names.listener(bind, port.target_port),
                                         traffic_direction=base_pb2.INBOUND)
        listener.address.socket_address.address = bind
        listener.address.socket_address.port_value = port.target_port
        listener.continue_on_listener_filters_timeout = True
        listener.listener_filters_timeout.SetInParent()
        listener.filter_chains.extend(_port_chains(ctx, port, destination_port=False))
        _inspectors(listener, [port], include_original_dst=False)
        out.append(listener)
    return out


def virtual_inbound(ctx: ProxyContext, ports: list[InboundPort]) -> listener_pb2.Listener:
    listen = ctx.mesh.proxy_inbound_listen_port
    listener = listener_pb2.Listener(name=VIRTUAL_INBOUND, traffic_direction=base_pb2.INBOUND)
    listener.address.socket_address.address = "0.0.0.0"
    listener.address.socket_address.port_value = listen
    listener.continue_on_listener_filters_timeout = True
    listener.listener_filters_timeout.SetInParent()
    blackhole = listener.filter_chains.add(name="virtualInbound-blackhole")
    blackhole.filter_chain_match.destination_port.value = listen
    blackhole.filters.append(filters.tcp_proxy(BLACKHOLE))
    listener.filter_chains.extend(_passthrough_chains(ctx))
    for port in ports:
        listener.filter_chains.extend(_port_chains(ctx, port, destination_port=True))
    _inspectors(listener, ports, include_original_dst=True)
    if ctx.proxy.interception == INTERCEPTION_TPROXY:
        # TPROXY keeps the original destination on the socket (transparent) and Envoy connects
        # to the app from the client's own address, marked so the replies come back to it.
        listener.transparent.value = True
        listener.listener_filters.insert(1, lc.ListenerFilter(
            name="envoy.filters.listener.original_src", typed_config=typed(original_src_pb2.OriginalSrc(mark=TPROXY_MARK))))
    return listener


def _inspectors(listener: listener_pb2.Listener, ports: list[InboundPort], *, include_original_dst: bool) -> None:
    """Listener filters, each disabled on ports whose chains do not need it."""
    if include_original_dst:
        listener.listener_filters.add(name="envoy.filters.listener.original_dst",
                                      typed_config=typed(original_dst_pb2.OriginalDst()))
    listener.listener_filters.add(name="envoy.filters.listener.tls_inspector",
                                  typed_config=typed(tls_inspector_pb2.TlsInspector()))
    http_inspector = listener.listener_filters.add(name="envoy.filters.listener.http_inspector",
                                                   typed_config=typed(http_inspector_pb2.HttpInspector()))
    http_off = sorted({p.target_port for p in ports if protocols.listener_class(p.protocol) != "AUTO"})
    _disable_on(http_inspector, http_off)


def _disable_on(entry: lc.ListenerFilter, ports: list[int]) -> None:
    if not ports:
        return
    if len(ports) == 1:
        entry.filter_disabled.destination_port_range.start = ports[0]
        entry.filter_disabled.destination_port_range.end = ports[0] + 1
        return
    for port in ports:
        rule = entry.filter_disabled.or_match.rules.add()
        rule.destination_port_range.start = port
        rule.destination_port_range.end = port + 1


def _passthrough_chains(ctx: ProxyContext) -> list[lc.FilterChain]:
    return [
        inbound_chain(option, "virtualInbound-catchall-http" if option.http else VIRTUAL_INBOUND, None,
                      _terminal(ctx, option, INBOUND_PASSTHROUGH, protocols.UNSUPPORTED, None),
                      metadata_exchange=ctx.proxy.istio_extensions, policy=_tcp_policy(ctx, option))
        for option in _OPTIONS[(_mode(ctx, None), "AUTO")]
    ]


def _port_chains(ctx: ProxyContext, port: InboundPort, *, destination_port: bool) -> list[lc.FilterChain]:
    options = _OPTIONS[(_mode(ctx, port.target_port), protocols.listener_class(port.protocol))]
    cluster = names.inbound_cluster(port.target_port)
    name = names.listener(port.bind or "0.0.0.0", port.target_port)
    number = port.target_port if destination_port else None
    return [inbound_chain(option, name, number, _terminal(ctx, option, cluster, port.protocol, port),
                          metadata_exchange=ctx.proxy.istio_extensions, policy=_tcp_policy(ctx, option))
            for option in options]


def _tcp_policy(ctx: ProxyContext, option: ChainOption) -> tuple[lc.Filter, ...]:
    """A TCP chain's authorization filters (an HTTP chain's are inside its HCM)."""
    return () if option.http else inbound_policy(ctx).tcp


def inbound_chain(option: ChainOption, name: str, destination_port: int | None, terminal: lc.Filter, *,
                  metadata_exchange: bool, policy: tuple[lc.Filter, ...] = ()) -> lc.FilterChain:
    """One inbound filter chain: its match (port, transport, ALPN), the mTLS it terminates, and
    its filters ending in `terminal` (the chain's HTTP connection manager or TCP proxy), after
    the authorization filters of a TCP chain (`policy`)."""
    chain = lc.FilterChain(name=name)
    match = chain.filter_chain_match
    if destination_port is not None:
        match.destination_port.value = destination_port
    match.transport_protocol = option.transport
    match.application_protocols.extend(option.alpn)
    if option.terminate:
        alpn = tls.INBOUND_ALPN_HTTP if option.http else tls.INBOUND_ALPN_TCP
        chain.transport_socket.CopyFrom(tls.socket(tls.inbound_mtls(alpn)))
    if metadata_exchange:
        chain.filters.append(filters.network_metadata_exchange())
    chain.filters.extend(policy)
    chain.filters.append(terminal)
    return chain


def _terminal(ctx: ProxyContext, option: ChainOption, cluster: str, port_protocol: str,
              port: InboundPort | None) -> lc.Filter:
    """A chain's last filter: an HTTP connection manager or a TCP proxy, to the inbound cluster."""
    if not option.http:
        return filters.tcp_proxy(cluster)
    listener = names.listener(port.bind or "0.0.0.0", port.target_port) if port else "0.0.0.0_15006"
    manager = filters.connection_manager(
        ctx.proxy,
        stat_prefix=f"inbound_{listener};",
        direction=filters.INBOUND,
        port_protocol=port_protocol,
        mesh=ctx.mesh,
        route_config=_inbound_route(cluster, port),
        policy=inbound_policy(ctx).http,
    )
    return filters.hcm_filter(manager)


def _inbound_route(cluster: str, port: InboundPort | None) -> route_pb2.RouteConfiguration:
    """The inline route of an inbound HTTP chain: everything to the local application."""
    config = route_pb2.RouteConfiguration(name=cluster)
    config.validate_clusters.value = False
    service_port = port.services[0][1].port if port and port.services else 0
    vhost = config.virtual_hosts.add(name=f"inbound|http|{service_port}", domains=["*"])
    route = vhost.routes.add(name="default")
    route.match.prefix = "/"
    action = route.route
    action.cluster = cluster
    action.timeout.SetInParent()
    action.max_stream_duration.max_stream_duration.SetInParent()
    action.max_stream_duration.grpc_timeout_header_max.SetInParent()
    if port and port.services:
        service, service_port_obj = port.services[0]
        route.decorator.operation = f"{service.hostname}:{service_port_obj.port}/*"
    else:
        route.decorator.operation = ":0/*"
    return config
