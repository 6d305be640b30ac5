"""VirtualService `tcp` and `tls` routes on a sidecar's TCP listeners (translation-spec §3.9)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from envoy.config.listener.v3 import listener_components_pb2 as lc

from meshctl.generate import filters, names
from meshctl.generate.context import ProxyContext
from meshctl import protocols
from meshctl.hostnames import matches
from meshctl.model.istio import VirtualServiceView
from meshctl.model.service import Service, ServicePort


@dataclass(slots=True)
class TcpChain:
    filters: list[lc.Filter]
    server_names: list[str] = field(default_factory=list)
    prefix_ranges: list[str] = field(default_factory=list)


def tcp_chains(ctx: ProxyContext, service: Service, port: ServicePort, bind: str) -> list[TcpChain]:
    """Chains for one service port: TLS routes on TLS/HTTPS ports, TCP routes otherwise,
    falling back to a single chain to `outbound|PORT||HOST`."""
    default_cluster = names.outbound_cluster(port.port, service.hostname)
    vs = _virtual_service_for(ctx, service)
    tls_port = port.protocol in (protocols.TLS, protocols.HTTPS)
    chains: list[TcpChain] = []
    if vs is not None and tls_port:
        chains = _tls_chains(ctx, vs, port.port)
    elif vs is not None:
        chains = _tcp_route_chains(ctx, vs, port.port, service)
    if chains:
        return chains
    chain = TcpChain([_proxy(ctx, [(default_cluster, 0)], default_cluster)])
    if tls_port and (bind == "0.0.0.0" or not service.has_vip):
        chain.server_names = [service.hostname]
    if "/" in service.address:
        chain.prefix_ranges = [service.address]
    return [chain]


def _virtual_service_for(ctx: ProxyContext, service: Service) -> VirtualServiceView | None:
    for egress in ctx.scope.egress:
        for vs in egress.virtual_services:
            if any(matches(host, service.hostname) for host in vs.hosts) and (vs.spec.get("tcp") or vs.spec.get("tls")):
                return vs
    return None


def _static_match(ctx: ProxyContext, match: Mapping[str, Any], port: int) -> bool:
    if match.get("port") and match["port"] != port:
        return False
    if match.get("gateways"):
        return "mesh" in match["gateways"]
    labels = match.get("sourceLabels") or {}
    if not all(ctx.proxy.labels.get(k) == v for k, v in labels.items()):
        return False
    namespace = match.get("sourceNamespace")
    return not namespace or namespace == ctx.proxy.namespace


def _destinations(vs: VirtualServiceView, routes: Sequence[Mapping[str, Any]], port: int) -> list[tuple[str, int]]:
    out = []
    for route in routes:
        destination = route.get("destination") or {}
        number = (destination.get("port") or {}).get("number") or port
        cluster = names.outbound_cluster(number, vs.host(destination.get("host", "")), destination.get("subset", ""))
        out.append((cluster, route.get("weight", 0)))
    return out


def _proxy(ctx: ProxyContext, destinations: list[tuple[str, int]], stat: str) -> lc.Filter:
    if len(destinations) == 1:
        return filters.tcp_proxy(destinations[0][0])
    weighted = [(cluster, weight) for cluster, weight in destinations if weight > 0]
    return filters.tcp_proxy("", stat, weighted=weighted)


def _tls_chains(ctx: ProxyContext, vs: VirtualServiceView, port: int) -> list[TcpChain]:
    chains: list[TcpChain] = []
    seen: set[tuple] = set()
    for rule in vs.spec.get("tls") or []:
        destinations = _destinations(vs, rule.get("route") or [], port)
        if not destinations:
            continue
        for match in rule.get("match") or []:
            if not _static_match(ctx, match, port):
                continue
            key = (tuple(sorted(match.get("sniHosts") or [])), tuple(match.get("destinationSubnets") or []))
            if key in seen:
                continue
            seen.add(key)
            chains.append(TcpChain([_proxy(ctx, destinations, f"{vs.name}.{vs.namespace}")],
                                   server_names=list(key[0]), prefix_ranges=list(key[1])))
    return chains


def _tcp_route_chains(ctx: ProxyContext, vs: VirtualServiceView, port: int, service: Service) -> list[TcpChain]:
    chains: list[TcpChain] = []
    for rule in vs.spec.get("tcp") or []:
        destinations = _destinations(vs, rule.get("route") or [], port)
        if not destinations:
            continue
        stat = f"{vs.name}.{vs.namespace}"
        matches_ = rule.get("match") or []
        if not matches_:
            chains.append(TcpChain([_proxy(ctx, destinations, stat)]))
            return chains
        subnets: list[str] = []
        for match in matches_:
            if not _static_match(ctx, match, port):
                continue
            if not match.get("destinationSubnets"):
                chains.append(TcpChain([_proxy(ctx, destinations, stat)]))
                return chains
            subnets.extend(match["destinationSubnets"])
        if subnets:
            chains.append(TcpChain([_proxy(ctx, destinations, stat)], prefix_ranges=subnets))
    return chains
