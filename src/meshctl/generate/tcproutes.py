"""VirtualService `tcp` and `tls` routes on a sidecar's TCP listeners (translation-spec §3.9)."""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.listener.v3 import listener_components_pb2 as lc

from meshctl.config.kinds.networking.destination_rule import TCPSettings, TrafficPolicy, TunnelSettings
from meshctl.config.kinds.networking.virtual_service import RouteDestination
from meshctl.generate import filters, names
from meshctl.generate.chains import OutboundChain, distinct_networks
from meshctl.generate.context import ProxyContext
from meshctl.generate.filters import StreamPolicy, node_stream_policy
from meshctl.generate.policy import consistent_hash
from meshctl import protocols
from meshctl.hostnames import matches
from meshctl.model.istio import DestinationRuleView, VirtualServiceView
from meshctl.model.scope import SidecarScope
from meshctl.model.service import Service, ServicePort

__all__ = ["route_filter", "sets_stream_policy", "stream_policy", "stream_routing", "tcp_chains"]


def tcp_chains(ctx: ProxyContext, service: Service, port: ServicePort, bind: str) -> list[OutboundChain]:
    """Chains for one service port: TLS routes on TLS/HTTPS ports, TCP routes otherwise,
    falling back to a single chain to `outbound|PORT||HOST`."""
    default_cluster = names.outbound_cluster(port.port, service.hostname)
    vs = _virtual_service_for(ctx, service)
    tls_port = port.protocol in (protocols.TLS, protocols.HTTPS)
    chains: list[OutboundChain] = []
    if vs is not None and tls_port:
        chains = _tls_chains(ctx, vs, port.port)
    elif vs is not None:
        chains = _tcp_route_chains(ctx, vs, port.port, service)
    if chains:
        return chains
    chain = OutboundChain([proxy_filter([(default_cluster, 0)], default_cluster,
                                        stream_policy(ctx, service.hostname, service.namespace))])
    cidr = "/" in service.address
    # Istio matches the SNI only where the destination address alone cannot tell services
    # apart: a wildcard-bound listener or a CIDR. A headless service's per-pod listener is
    # bound to the pod's own address, so it matches no SNI.
    if tls_port and (bind == "0.0.0.0" or cidr):
        chain.server_names = [service.hostname]
    if cidr:
        chain.prefix_ranges = [service.address]
    return [chain]


def stream_routing(scope: SidecarScope) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The revisions and hosts of the VirtualServices in a scope that route TCP or TLS: all
    that outbound listeners read of VirtualServices (see _virtual_service_for)."""
    return tuple(stream for egress in scope.egress for stream in egress.streams)


def _virtual_service_for(ctx: ProxyContext, service: Service) -> VirtualServiceView | None:
    for egress in ctx.scope.egress:
        for vs in egress.virtual_services:
            if any(matches(host, service.hostname) for host in vs.hosts) and (vs.spec.tcp or vs.spec.tls):
                return vs
    return None


def route_clusters(vs: VirtualServiceView, routes: Sequence[RouteDestination], port: int) -> list[tuple[str, int]]:
    """(cluster, weight) of each destination of a TCP or TLS route; the port defaults to the
    listener's (a sidecar's service port, a gateway's server port)."""
    out = []
    for route in routes:
        destination = route.destination
        number = (destination.port.number if destination.port else 0) or port
        cluster = names.outbound_cluster(number, vs.host(destination.host), destination.subset)
        out.append((cluster, route.weight))
    return out


def stream_policy(ctx: ProxyContext, host: str, namespace: str, subset: str = "") -> StreamPolicy:
    """The policy for streams to `host` (a service of `namespace`) and `subset`: "" when
    several destinations share the tcp_proxy, as Istio reads only the rule then. What the
    rule leaves unset of the idle timeout is the node's (all of it without a rule)."""
    rule = ctx.snapshot.destination_rule(ctx.proxy, host, namespace)
    if rule is None:
        return node_stream_policy(ctx.proxy)
    own = rule.subset(subset) if subset else None
    balanced = own.traffic_policy if own is not None and own.traffic_policy and own.traffic_policy.load_balancer else None
    tcp = _rule_tcp(rule)
    idle = tcp.idle_timeout if tcp is not None and tcp.idle_timeout is not None else ctx.proxy.flags.idle_timeout
    return StreamPolicy(idle, tcp.max_connection_duration if tcp else None,
                        _hashes_source_ip(balanced or rule.traffic_policy), _tunnel(rule, subset))


def sets_stream_policy(rule: DestinationRuleView) -> bool:
    """Whether `rule` sets anything `stream_policy` reads: a DestinationRule change reaches
    outbound listeners only where some rule does (a caller's shortcut; `meshctl diff`). The
    node's idle timeout is no rule's: without one of its own, a rule leaves it as no rule does."""
    tcp = _rule_tcp(rule)
    policies = (rule.traffic_policy, *(s.traffic_policy for s in rule.subsets))
    return (tcp is not None and (tcp.idle_timeout is not None or tcp.max_connection_duration is not None)
            or any(map(_hashes_source_ip, policies))
            or any(policy is not None and policy.tunnel is not None for policy in policies))


def _tunnel(rule: DestinationRuleView, subset: str) -> tuple[str, bool] | None:
    """The rule's `tunnel` as tcp_proxy's tunneling_config takes it (Istio's tunnelingconfig):
    a routed subset's own and nothing else (not the rule's), the rule's without a subset."""
    if subset:
        own = rule.subset(subset)
        settings: TunnelSettings | None = own.traffic_policy.tunnel if own is not None and own.traffic_policy else None
    else:
        settings = rule.traffic_policy.tunnel if rule.traffic_policy else None
    if settings is None:
        return None
    host = f"[{settings.target_host}]" if ":" in settings.target_host else settings.target_host
    return f"{host}:{settings.target_port}", settings.protocol == "POST"


def _rule_tcp(rule: DestinationRuleView) -> TCPSettings | None:
    """The rule's own TCP connection pool (Istio reads no subset's or port's for tcp_proxy)."""
    policy = rule.traffic_policy
    return policy.connection_pool.tcp if policy and policy.connection_pool else None


def _hashes_source_ip(policy: TrafficPolicy | None) -> bool:
    chosen = consistent_hash(policy)
    return chosen is not None and chosen.use_source_ip


def proxy_filter(destinations: list[tuple[str, int]], stat: str, policy: StreamPolicy) -> lc.Filter:
    """tcp_proxy to the one destination, or to the weighted ones (stat prefix `vs.namespace`)."""
    if len(destinations) == 1:
        return filters.tcp_proxy(destinations[0][0], policy=policy)
    weighted = [(cluster, weight) for cluster, weight in destinations if weight > 0]
    return filters.tcp_proxy("", stat, weighted=weighted, policy=policy)


def route_filter(ctx: ProxyContext, vs: VirtualServiceView, routes: Sequence[RouteDestination], port: int) -> lc.Filter:
    """tcp_proxy for a TCP or TLS route (of a sidecar or a gateway), with the DestinationRule
    of its first destination's service, as Istio takes it (none, so the node's idle timeout
    alone, when no service has that host)."""
    destinations = route_clusters(vs, routes, port)
    first = routes[0].destination
    host = vs.host(first.host)
    services = ctx.snapshot.registry.services_for_host(host)
    policy = (stream_policy(ctx, host, services[0].namespace, first.subset if len(destinations) == 1 else "")
              if services else node_stream_policy(ctx.proxy))
    return proxy_filter(destinations, f"{vs.name}.{vs.namespace}", policy)


def _tls_chains(ctx: ProxyContext, vs: VirtualServiceView, port: int) -> list[OutboundChain]:
    chains: list[OutboundChain] = []
    seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    for rule in vs.spec.tls:
        if not rule.route:
            continue
        for match in rule.match:
            if not ctx.applies(match, port):
                continue
            key = (tuple(sorted(match.sni_hosts)), tuple(distinct_networks(match.destination_subnets)))
            if key in seen:
                continue
            seen.add(key)
            chains.append(OutboundChain([route_filter(ctx, vs, rule.route, port)],
                                   server_names=list(key[0]), prefix_ranges=list(match.destination_subnets)))
    return chains


def _tcp_route_chains(ctx: ProxyContext, vs: VirtualServiceView, port: int, service: Service) -> list[OutboundChain]:
    chains: list[OutboundChain] = []
    for rule in vs.spec.tcp:
        if not rule.route:
            continue
        if not rule.match:
            chains.append(OutboundChain([route_filter(ctx, vs, rule.route, port)]))
            return chains
        subnets: list[str] = []
        for match in rule.match:
            if not ctx.applies(match, port):
                continue
            if not match.destination_subnets:
                chains.append(OutboundChain([route_filter(ctx, vs, rule.route, port)]))
                return chains
            subnets.extend(match.destination_subnets)
        if subnets:
            chains.append(OutboundChain([route_filter(ctx, vs, rule.route, port)], prefix_ranges=subnets))
    return chains
