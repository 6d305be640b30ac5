"""VirtualService `tcp` and `tls` routes on a sidecar's TCP listeners (translation-spec §3.9)."""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.listener.v3 import listener_components_pb2 as lc

from meshctl.config.kinds.networking.virtual_service import RouteDestination
from meshctl.generate import filters, names
from meshctl.generate.chains import OutboundChain, distinct_networks
from meshctl.generate.context import ProxyContext
from meshctl import protocols
from meshctl.hostnames import matches
from meshctl.model.istio import VirtualServiceView
from meshctl.model.scope import SidecarScope
from meshctl.model.service import Service, ServicePort

__all__ = ["proxy_filter", "route_clusters", "stream_routing", "tcp_chains"]


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
    chain = OutboundChain([proxy_filter([(default_cluster, 0)], default_cluster)])
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


def proxy_filter(destinations: list[tuple[str, int]], stat: str) -> lc.Filter:
    """tcp_proxy to the one destination, or to the weighted ones (stat prefix `vs.namespace`)."""
    if len(destinations) == 1:
        return filters.tcp_proxy(destinations[0][0])
    weighted = [(cluster, weight) for cluster, weight in destinations if weight > 0]
    return filters.tcp_proxy("", stat, weighted=weighted)


def _tls_chains(ctx: ProxyContext, vs: VirtualServiceView, port: int) -> list[OutboundChain]:
    chains: list[OutboundChain] = []
    seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    for rule in vs.spec.tls:
        destinations = route_clusters(vs, rule.route, port)
        if not destinations:
            continue
        for match in rule.match:
            if not ctx.applies(match, port):
                continue
            key = (tuple(sorted(match.sni_hosts)), tuple(distinct_networks(match.destination_subnets)))
            if key in seen:
                continue
            seen.add(key)
            chains.append(OutboundChain([proxy_filter(destinations, f"{vs.name}.{vs.namespace}")],
                                   server_names=list(key[0]), prefix_ranges=list(match.destination_subnets)))
    return chains


def _tcp_route_chains(ctx: ProxyContext, vs: VirtualServiceView, port: int, service: Service) -> list[OutboundChain]:
    chains: list[OutboundChain] = []
    for rule in vs.spec.tcp:
        destinations = route_clusters(vs, rule.route, port)
        if not destinations:
            continue
        stat = f"{vs.name}.{vs.namespace}"
        if not rule.match:
            chains.append(OutboundChain([proxy_filter(destinations, stat)]))
            return chains
        subnets: list[str] = []
        for match in rule.match:
            if not ctx.applies(match, port):
                continue
            if not match.destination_subnets:
                chains.append(OutboundChain([proxy_filter(destinations, stat)]))
                return chains
            subnets.extend(match.destination_subnets)
        if subnets:
            chains.append(OutboundChain([proxy_filter(destinations, stat)], prefix_ranges=subnets))
    return chains
