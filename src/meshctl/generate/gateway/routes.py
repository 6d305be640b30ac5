"""RDS for gateways: the route configuration of one HTTP server, or of all plain-text HTTP servers
sharing a port (Istio's buildGatewayHTTPRouteConfig).

Virtual hosts are the hosts that a server and a VirtualService bound to the server's gateway
have in common (the more specific of each overlapping pair), named `<host>:<server port>`.
Unlike a sidecar's, a gateway's virtual host takes the routes of every VirtualService and every
server that claims its host, in order. Hosts with identical routes share one virtual host;
catch-all routes go last; a route configuration with no host gets a `blackhole` virtual host,
so every request is answered 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2

from meshctl.generate import httproute, names
from meshctl.generate.context import ProxyContext
from meshctl.generate.routes import MAX_DIRECT_RESPONSE_BODY, vs_routes
from meshctl.hostnames import matches
from meshctl.model.gateway import MergedGateway, hosts_for_namespace, virtual_services_for_gateway
from meshctl.model.istio import VirtualServiceView
from meshctl.model.service import Service

__all__ = ["gateway_route_configuration", "intersection", "services_for"]


@dataclass(slots=True)
class _VirtualHost:
    """A virtual host being built. Its routes stay Python lists until the end: hosts are merged
    by the identity of their route objects, which copying them into messages would lose."""

    name: str
    domains: list[str]
    routes: list[rc.Route] = field(default_factory=list)
    require_tls: bool = False

    def message(self, attempt_count: bool) -> rc.VirtualHost:
        out = rc.VirtualHost(name=self.name, domains=self.domains, include_request_attempt_count=attempt_count)
        if self.require_tls:
            out.require_tls = rc.VirtualHost.ALL
        out.routes.extend(_catch_all_last(self.routes))
        return out


def gateway_route_configuration(ctx: ProxyContext, merged: MergedGateway, name: str) -> route_pb2.RouteConfiguration:
    """The route configuration a gateway listener asks for; a name no server has gets an empty
    one (Envoy may still ask for it while a deleted gateway's listener drains)."""
    servers = merged.servers_by_route.get(name)
    config = route_pb2.RouteConfiguration(name=name)
    config.validate_clusters.value = False
    if not servers:
        return config
    vhosts: dict[str, _VirtualHost] = {}
    bound: dict[str, list[VirtualServiceView]] = {}
    built: dict[tuple[str, int], list[rc.Route]] = {}
    for server in servers:
        port = server.number
        gateway = server.gateway
        if gateway not in bound:
            bound[gateway] = virtual_services_for_gateway(ctx.snapshot.virtual_services, ctx.proxy.namespace, gateway)
        for vs in bound[gateway]:
            common = intersection(hosts_for_namespace(server.hosts, vs.namespace), vs.hosts)
            if not common:
                continue
            key = (gateway, id(vs))
            if key not in built:
                built[key] = vs_routes(ctx, vs, port, services_for(ctx, vs), gateways=frozenset({gateway}),
                                       tls=server.tls is not None)
            routes = built[key]
            if not routes:
                continue
            for host in common:
                lowered = host.lower()
                vhost = vhosts.get(lowered)
                if vhost is None:
                    vhost = vhosts[lowered] = _VirtualHost(names.virtual_host(lowered, port), [lowered])
                vhost.routes.extend(routes)
                vhost.require_tls = vhost.require_tls or server.https_redirect
        if server.https_redirect:
            for host in server.hosts:
                lowered = host.lower()
                vhost = vhosts.get(lowered)
                if vhost is None:
                    vhost = vhosts[lowered] = _VirtualHost(names.virtual_host(lowered, port), [lowered])
                vhost.require_tls = True
    if vhosts:
        attempts = ctx.headers.attempt_count
        config.virtual_hosts.extend(sorted((v.message(attempts) for v in _collapsed(vhosts)), key=lambda v: v.name))
    else:
        config.virtual_hosts.add(name=names.virtual_host("blackhole", servers[0].number), domains=["*"])
    config.ignore_port_in_host_matching = True
    config.max_direct_response_body_size_bytes.value = MAX_DIRECT_RESPONSE_BODY
    return config


def _collapsed(vhosts: Mapping[str, _VirtualHost]) -> list[_VirtualHost]:
    """Istio's collapseDuplicateRoutes: hosts (sorted) whose routes are the very same route
    objects, with the same TLS requirement, become one virtual host: the first one's, which
    gains the others' domains."""
    kept: list[_VirtualHost] = []
    for host in sorted(vhosts):
        vhost = vhosts[host]
        for other in kept:
            if (other.require_tls == vhost.require_tls and len(other.routes) == len(vhost.routes)
                    and all(a is b for a, b in zip(other.routes, vhost.routes, strict=True))):
                other.domains.extend(vhost.domains)
                break
        else:
            kept.append(vhost)
    return kept


def _catch_all_last(routes: list[rc.Route]) -> list[rc.Route]:
    """Istio's SortVHostRoutes: catch-all routes move behind the others, order otherwise kept."""
    return [r for r in routes if not httproute.is_catch_all(r)] + [r for r in routes if httproute.is_catch_all(r)]


def intersection(server_hosts: list[str], vs_hosts: tuple[str, ...]) -> list[str]:
    """Istio's Names.Intersection: for each overlapping pair, the more specific host (once)."""
    out: list[str] = []
    for host in server_hosts:
        for other in vs_hosts:
            if matches(other, host):
                chosen = host
            elif matches(host, other):
                chosen = other
            else:
                continue
            if chosen not in out:
                out.append(chosen)
    return out


def services_for(ctx: ProxyContext, vs: VirtualServiceView) -> dict[str, Service]:
    """The service each destination host of a VirtualService means (Istio's
    buildNameToServiceMapForHTTPRoutes): the one in the VirtualService's namespace if the
    gateway sees it, else one the gateway's namespace sees."""
    out: dict[str, Service] = {}
    namespace = ctx.proxy.namespace
    for host in vs.http_destinations:
        candidates = ctx.snapshot.registry.services_for_host(host)
        chosen = next((s for s in candidates if s.namespace == vs.namespace and s.visible_to(namespace)), None)
        if chosen is None:
            chosen = next((s for s in candidates if s.namespace == namespace and s.visible_to(namespace)), None) \
                or next((s for s in candidates if s.visible_to(namespace)), None)
        if chosen is not None:
            out[host] = chosen
    return out
