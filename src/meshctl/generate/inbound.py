"""LDS (inbound): virtualInbound on 15006 and its mTLS-aware chains (translation-spec §2.7,
security.md §3).

Which chains a port gets depends on its PeerAuthentication mode and protocol: STRICT accepts only
Istio mTLS, PERMISSIVE accepts mTLS and plaintext side by side, DISABLE only plaintext. Each
chain matches on destination port, transport (tls/raw_buffer) and ALPN, so one listener serves
them all; the TLS and HTTP inspectors that fill in transport and ALPN run only on the ports
whose chains ask for them, as Istio derives them from the chains themselves.

Chains come in sets (Istio's inboundChainConfig): the catch-all passthrough set (the workload's
mode, no port), one passthrough set per `portLevelMtls` port that no service or Sidecar
ingress declares (that port's mode), and one set per port the workload serves. A port whose
Sidecar ingress (or a proxy without traffic capture) binds it gets a listener of its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.original_src.v3 import original_src_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2

from meshctl import protocols
from meshctl.generate import filters, names, tls
from meshctl.generate.context import InboundPort, ProxyContext
from meshctl.generate.inbound_policy import InboundPolicy, inbound_policy
from meshctl.generate.names import BLACKHOLE, INBOUND_PASSTHROUGH
from meshctl.generate.protobuf import typed
from meshctl.model.peerauth import DISABLE, PERMISSIVE, STRICT
from meshctl.model.proxy import INTERCEPTION_TPROXY

__all__ = [
    "BLACKHOLE_CHAIN",
    "CATCH_ALL_HTTP",
    "ChainOption",
    "ChainSet",
    "HTTP_INSPECTOR",
    "HTTP_PLAIN_ALPNS",
    "ORIGINAL_DST",
    "ORIGINAL_SRC",
    "RAW_BUFFER",
    "TLS_INSPECTOR",
    "TLS_TRANSPORT",
    "TPROXY_MARK",
    "VIRTUAL_INBOUND",
    "WILDCARD",
    "build_chains",
    "build_inbound_listeners",
    "chain_options",
    "inbound_chain",
    "listener_filters",
    "virtual_inbound",
]

VIRTUAL_INBOUND = "virtualInbound"
CATCH_ALL_HTTP = "virtualInbound-catchall-http"
BLACKHOLE_CHAIN = "virtualInbound-blackhole"
WILDCARD = "0.0.0.0"
TPROXY_MARK = 1337  # Istio's original_src mark; istio-iptables routes packets with it back to Envoy
HTTP_PLAIN_ALPNS = ("http/1.1", "h2c")
TLS_TRANSPORT = "tls"
RAW_BUFFER = "raw_buffer"
ORIGINAL_DST = "envoy.filters.listener.original_dst"
ORIGINAL_SRC = "envoy.filters.listener.original_src"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
HTTP_INSPECTOR = "envoy.filters.listener.http_inspector"


@dataclass(frozen=True, slots=True)
class ChainOption:
    """One filter chain variant: transport, ALPNs, whether Envoy terminates mTLS, HTTP or TCP."""

    transport: str
    alpn: tuple[str, ...]
    terminate: bool
    http: bool


_MTLS_ALL = tuple(tls.ISTIO_ALL_ALPNS)
_MTLS_HTTP = tuple(tls.ISTIO_HTTP_ALPNS)
_MTLS_TCP = ("istio-peer-exchange", "istio")
# Istio's filter chain match options by (mode, listener class), in its order (filterchain_options.go
# as of the notes' snapshot; a later revision moves PERMISSIVE TCP's plain-TLS chain last).
_OPTIONS = {
    (STRICT, "HTTP"): [ChainOption(TLS_TRANSPORT, (), True, True)],
    (STRICT, "TCP"): [ChainOption(TLS_TRANSPORT, (), True, False)],
    (STRICT, "AUTO"): [ChainOption(TLS_TRANSPORT, _MTLS_HTTP, True, True), ChainOption(TLS_TRANSPORT, (), True, False)],
    (PERMISSIVE, "HTTP"): [ChainOption(TLS_TRANSPORT, _MTLS_ALL, True, True), ChainOption(RAW_BUFFER, (), False, True)],
    (PERMISSIVE, "TCP"): [
        ChainOption(TLS_TRANSPORT, _MTLS_ALL, True, False),
        ChainOption(TLS_TRANSPORT, (), False, False),
        ChainOption(RAW_BUFFER, (), False, False),
    ],
    (PERMISSIVE, "AUTO"): [
        ChainOption(TLS_TRANSPORT, _MTLS_HTTP, True, True),
        ChainOption(RAW_BUFFER, HTTP_PLAIN_ALPNS, False, True),
        ChainOption(TLS_TRANSPORT, _MTLS_TCP, True, False),
        ChainOption(RAW_BUFFER, (), False, False),
        ChainOption(TLS_TRANSPORT, (), False, False),
    ],
    (DISABLE, "HTTP"): [ChainOption(RAW_BUFFER, (), False, True)],
    (DISABLE, "TCP"): [ChainOption(RAW_BUFFER, (), False, False)],
    (DISABLE, "AUTO"): [
        ChainOption(RAW_BUFFER, HTTP_PLAIN_ALPNS, False, True),
        ChainOption(RAW_BUFFER, (), False, False),
    ],
}


def chain_options(mode: str, protocol: str) -> list[ChainOption]:
    """The chains a port of `protocol` gets in `mode` (an unknown mode counts as DISABLE, as
    in Istio: no TLS context)."""
    known = mode if mode in (STRICT, PERMISSIVE) else DISABLE
    return _OPTIONS[(known, protocols.listener_class(protocol))]


@dataclass(frozen=True, slots=True)
class ChainSet:
    """The chains for one port (Istio's inboundChainConfig): its mode decides which (see
    chain_options); `port` 0 is the catch-all passthrough, matching every destination port."""

    port: int
    protocol: str
    mode: str
    cluster: str
    passthrough: bool = False
    bind: str = WILDCARD
    inbound: InboundPort | None = None

    def name(self, http: bool) -> str:
        """Passthrough chains keep Istio's fixed names; the others are named for bind and port."""
        if self.passthrough:
            return CATCH_ALL_HTTP if http else VIRTUAL_INBOUND
        return names.listener(self.bind, self.port)

    @property
    def stat_prefix(self) -> str:
        """The HTTP connection manager's stat prefix: the cluster for passthrough chains."""
        return (self.cluster if self.passthrough else f"inbound_{names.listener(self.bind, self.port)}") + ";"


def build_inbound_listeners(ctx: ProxyContext) -> list[listener_pb2.Listener]:
    """virtualInbound when traffic is captured, then a listener for each port that binds for real."""
    virtual: list[lc.FilterChain] = []
    bound: list[listener_pb2.Listener] = []
    for chain_set in _service_sets(ctx):
        binds = _binds(ctx, chain_set.inbound)
        if binds and ctx.unbindable(chain_set.port, "inbound"):
            continue
        chains = build_chains(ctx, chain_set)
        if binds:
            bound.append(_bound_listener(ctx, chain_set, chains))
        else:
            virtual.extend(chains)
    if not ctx.proxy.captures_traffic:
        return bound
    return [virtual_inbound(ctx, virtual), *bound]


def _binds(ctx: ProxyContext, port: InboundPort | None) -> bool:
    """Istio's getBindToPort: a Sidecar ingress's captureMode, else the proxy's interception."""
    mode = port.capture_mode if port is not None else ""
    if mode in ("", "DEFAULT"):
        return not ctx.proxy.captures_traffic
    return mode == "NONE"


def _service_sets(ctx: ProxyContext) -> list[ChainSet]:
    """A chain set per port the workload serves. Without traffic capture only Sidecar ingress
    ports count: a listener per service port would take the application's own ports."""
    if not ctx.proxy.captures_traffic and not ctx.scope.ingress:
        return []
    return [
        ChainSet(port.target_port, port.protocol, _mode(ctx, port.target_port), names.inbound_cluster(port.target_port),
                 bind=_bind(ctx, port), inbound=port)
        for port in ctx.inbound_ports()
    ]


def _bind(ctx: ProxyContext, port: InboundPort) -> str:
    """Where a port's chains listen (or, in a virtual listener, are named as listening): a
    Sidecar ingress's `bind`; without one, the proxy's own address when it is a global unicast
    one (Istio binds Sidecar ingress to instance_ip:port), else, and for service ports, the
    wildcard."""
    if port.bind:
        return port.bind
    if ctx.scope.ingress and _global_unicast(ctx.proxy.ip):
        return ctx.proxy.ip
    return WILDCARD


def _global_unicast(address: str) -> bool:
    """Go's net.IP.IsGlobalUnicast, which istiod asks: private ranges count, loopback does not."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    broadcast = isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255")
    return not (ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local or broadcast)


def _passthrough_sets(ctx: ProxyContext) -> list[ChainSet]:
    """The catch-all set in the workload's mode, then one per `portLevelMtls` port that no
    service (or, with Sidecar ingress, no ingress listener) declares, in that port's mode,
    ports ascending (Istio's order is its map's, which varies)."""
    declared = {port.target_port for port in ctx.inbound_ports()}
    extra = [port for port in _workload_mtls_ports(ctx) if port not in declared]
    return [ChainSet(port, protocols.UNSUPPORTED, _mode(ctx, port or None), INBOUND_PASSTHROUGH, passthrough=True)
            for port in (0, *extra)]


def _labels(ctx: ProxyContext) -> dict[str, str]:
    workload = ctx.proxy.workload
    return dict(workload.labels if workload is not None else ctx.proxy.labels)


def _mode(ctx: ProxyContext, port: int | None) -> str:
    return ctx.snapshot.mtls_mode(ctx.proxy.namespace, _labels(ctx), port)


def _workload_mtls_ports(ctx: ProxyContext) -> tuple[int, ...]:
    return ctx.snapshot.workload_mtls(ctx.proxy.namespace, _labels(ctx)).ports


def virtual_inbound(ctx: ProxyContext, service_chains: Sequence[lc.FilterChain]) -> listener_pb2.Listener:
    """The capture listener: the loop guard, the passthrough chains, then the service chains."""
    listen = ctx.mesh.proxy_inbound_listen_port
    listener = _listener(ctx, VIRTUAL_INBOUND, WILDCARD, listen)
    listener.filter_chains.append(_blackhole_chain(ctx, listen))
    for chain_set in _passthrough_sets(ctx):
        listener.filter_chains.extend(build_chains(ctx, chain_set))
    listener.filter_chains.extend(service_chains)
    tproxy = ctx.proxy.interception == INTERCEPTION_TPROXY
    listener.listener_filters.extend(listener_filters(listener.filter_chains, original_dst=True, original_src=tproxy))
    if tproxy:
        # TPROXY keeps the original destination on the socket (transparent) and Envoy connects
        # to the app from the client's own address, marked so the replies come back to it.
        listener.transparent.value = True
    return listener


def _bound_listener(ctx: ProxyContext, chain_set: ChainSet, chains: Sequence[lc.FilterChain]) -> listener_pb2.Listener:
    """A Sidecar ingress port (or any, without capture) on a listener that binds it for real."""
    listener = _listener(ctx, names.listener(chain_set.bind, chain_set.port), chain_set.bind, chain_set.port)
    listener.filter_chains.extend(chains)
    listener.listener_filters.extend(listener_filters(chains, original_dst=False, original_src=False))
    return listener


def _listener(ctx: ProxyContext, name: str, address: str, port: int) -> listener_pb2.Listener:
    """An inbound listener; the node's INBOUND_LISTENER_EXACT_BALANCE balances its connections
    exactly across Envoy's workers (Istio's buildInboundListener)."""
    listener = listener_pb2.Listener(name=name, traffic_direction=base_pb2.INBOUND)
    listener.address.socket_address.address = address
    listener.address.socket_address.port_value = port
    if ctx.proxy.flags.inbound_exact_balance:
        listener.connection_balance_config.exact_balance.SetInParent()
    listener.continue_on_listener_filters_timeout = True
    listener.listener_filters_timeout.SetInParent()  # mesh protocolDetectionTimeout, 0s: no timeout
    return listener


def _blackhole_chain(ctx: ProxyContext, listen: int) -> lc.FilterChain:
    """Traffic sent to 15006 itself would loop through Envoy forever: it goes nowhere."""
    chain = lc.FilterChain(name=BLACKHOLE_CHAIN)
    chain.filter_chain_match.destination_port.value = listen
    if ctx.proxy.istio_extensions:
        chain.filters.append(filters.network_metadata_exchange())
    chain.filters.append(filters.tcp_proxy(BLACKHOLE))
    return chain


def build_chains(ctx: ProxyContext, chain_set: ChainSet) -> list[lc.FilterChain]:
    """A chain set's filter chains, one per match option of its mode and protocol."""
    validation = tls.PeerValidation.of(ctx.mesh.trust_domains, typed=not ctx.proxy.istio_extensions)
    policy = inbound_policy(ctx)
    return [
        inbound_chain(option, chain_set.name(option.http), chain_set.port or None,
                      _chain_filters(ctx, chain_set, option.http, policy),
                      metadata_exchange=ctx.proxy.istio_extensions, validation=validation)
        for option in chain_options(chain_set.mode, chain_set.protocol)
    ]


def inbound_chain(option: ChainOption, name: str, destination_port: int | None, chain_filters: Sequence[lc.Filter],
                  *, metadata_exchange: bool, validation: tls.PeerValidation) -> lc.FilterChain:
    """One inbound filter chain: its match (port, transport, ALPN), the mTLS it terminates, and
    its filters: metadata exchange first (so that policy can read the peer's), then `chain_filters`
    (policy filters and the HTTP connection manager or TCP proxy)."""
    chain = lc.FilterChain(name=name)
    match = chain.filter_chain_match
    if destination_port is not None:
        match.destination_port.value = destination_port
    match.transport_protocol = option.transport
    match.application_protocols.extend(option.alpn)
    if option.terminate:
        alpn = tls.INBOUND_ALPN_HTTP if option.http else tls.INBOUND_ALPN_TCP
        chain.transport_socket.CopyFrom(tls.socket(tls.inbound_mtls(alpn, validation)))
    if metadata_exchange:
        chain.filters.append(filters.network_metadata_exchange())
    chain.filters.extend(chain_filters)
    return chain


def _chain_filters(ctx: ProxyContext, chain_set: ChainSet, http: bool, policy: InboundPolicy) -> list[lc.Filter]:
    """What follows metadata exchange: an HTTP connection manager with the chain's inline route
    (and the policy's HTTP filters), or the policy's network filters and a TCP proxy, to the
    chain set's cluster."""
    if not http:
        return [*policy.tcp, filters.tcp_proxy(chain_set.cluster, policy=filters.node_stream_policy(ctx.proxy))]
    port = chain_set.inbound
    manager = filters.connection_manager(
        ctx.proxy,
        stat_prefix=chain_set.stat_prefix,
        direction=filters.INBOUND,
        port_protocol=chain_set.protocol,
        mesh=ctx.mesh,
        route_config=_inbound_route(chain_set.cluster, port),
        policy=policy.http,
    )
    return [filters.hcm_filter(manager)]


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


def listener_filters(chains: Iterable[lc.FilterChain], *, original_dst: bool,
                     original_src: bool) -> list[lc.ListenerFilter]:
    """An inbound listener's listener filters, derived from its chains as Istio derives them.

    original_dst (and original_src under TPROXY) on the capture listener; the TLS inspector only
    when some chain matches `transport_protocol: tls`, the HTTP inspector only when some chain
    matches plaintext HTTP ALPNs (`http/1.1`, `h2c`), each disabled on the destination ports
    whose chains do not need it. Port 0 stands for the chains without a destination port: when
    they need the TLS inspector it runs everywhere but on the ports listed as not needing it;
    otherwise only on the ports that do. A port without TLS detection then sees TLS as raw
    bytes, so a TLS client of a DISABLE port reaches its plaintext chain.
    """
    needs: dict[int, tuple[bool, bool]] = {}
    for chain in chains:
        match = chain.filter_chain_match
        port = match.destination_port.value if match.HasField("destination_port") else 0
        tls_needed, http_needed = needs.get(port, (False, False))
        needs[port] = (tls_needed or match.transport_protocol == TLS_TRANSPORT,
                       http_needed or any(alpn in HTTP_PLAIN_ALPNS for alpn in match.application_protocols))
    out: list[lc.ListenerFilter] = []
    if original_dst:
        out.append(lc.ListenerFilter(name=ORIGINAL_DST, typed_config=typed(original_dst_pb2.OriginalDst())))
    if original_src:
        out.append(lc.ListenerFilter(name=ORIGINAL_SRC,
                                     typed_config=typed(original_src_pb2.OriginalSrc(mark=TPROXY_MARK))))
    if any(tls_needed for tls_needed, _ in needs.values()):
        inspector = lc.ListenerFilter(name=TLS_INSPECTOR, typed_config=typed(tls_inspector_pb2.TlsInspector()))
        catch_all = needs.get(0, (False, False))[0]
        ports = sorted(p for p, (tls_needed, _) in needs.items() if p and tls_needed != catch_all)
        if ports:
            if catch_all:
                _on_ports(inspector.filter_disabled, ports)
            else:
                _on_ports(inspector.filter_disabled.not_match, ports)
        out.append(inspector)
    if any(http_needed for _, http_needed in needs.values()):
        inspector = lc.ListenerFilter(name=HTTP_INSPECTOR, typed_config=typed(http_inspector_pb2.HttpInspector()))
        ports = sorted(p for p, (_, http_needed) in needs.items() if not http_needed)
        if ports:
            _on_ports(inspector.filter_disabled, ports)
        out.append(inspector)
    return out


def _on_ports(predicate: lc.ListenerFilterChainMatchPredicate, ports: Sequence[int]) -> None:
    """`predicate` matches these destination ports: a range [p, p+1) each, or-ed when several."""
    if len(ports) == 1:
        predicate.destination_port_range.start = ports[0]
        predicate.destination_port_range.end = ports[0] + 1
        return
    for port in ports:
        rule = predicate.or_match.rules.add()
        rule.destination_port_range.start = port
        rule.destination_port_range.end = port + 1
