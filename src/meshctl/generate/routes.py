"""RDS: the sidecar's per-port route configurations (`"9080"`), virtual hosts and their domains."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2

from meshctl.config.kinds.networking.destination_rule import ConsistentHashLB
from meshctl.config.kinds.networking.fields import Destination
from meshctl.config.kinds.networking.http import HTTPMatchRequest
from meshctl.config.kinds.networking.virtual_service import HTTPRoute
from meshctl.generate import httproute, names, policy
from meshctl.generate.core import istio_metadata
from meshctl.generate.protobuf import set_duration
from meshctl.generate.context import MESH_ONLY, ProxyContext
from meshctl.generate.impact import rules_beyond_clusters
from meshctl.generate.routebytes import AssembledRoutes, HostBlocks, SerializedHost
from meshctl.generate.sharded import ShardedMap
from meshctl.memokeys import Same
from meshctl import protocols
from meshctl.hostnames import intersects, matches, specificity
from meshctl.model.istio import VirtualServiceView, config_path
from meshctl.model.scope import EgressScope
from meshctl.model.service import ALIAS, PASSTHROUGH as PASSTHROUGH_RESOLUTION, Service
from meshctl.config.values import is_ip

__all__ = [
    "MAX_DIRECT_RESPONSE_BODY",
    "alternate_hosts",
    "destination_cluster",
    "destination_hash",
    "hash_policy",
    "listener_for_port",
    "route_configuration",
    "service_domains",
    "vs_routes",
]

MAX_DIRECT_RESPONSE_BODY = 1048576
R = TypeVar("R")


@dataclass(slots=True)
class _VirtualHost:
    name: str
    services: list[Service] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    routes: list[bytes] = field(default_factory=list)
    """Its routes, serialized."""
    default: bool = False
    source: Hashable = None


def route_configuration(ctx: ProxyContext, name: str) -> AssembledRoutes:
    """The route configuration a sidecar listener asks for; unknown names get an empty one.

    As in Istio, a domain belongs to the first virtual host that claims it in build order
    (VirtualServices oldest first, then the services no VirtualService covers), and only then
    are the virtual hosts sorted by name; a virtual host left without domains is dropped, as
    Envoy refuses one. Assembled from serialized virtual hosts (generate.routebytes), each
    built once for as long as its routes and domains stay.
    """
    config = route_pb2.RouteConfiguration(name=name, ignore_port_in_host_matching=True)
    config.validate_clusters.value = False
    config.max_direct_response_body_size_bytes.value = MAX_DIRECT_RESPONSE_BODY
    host, _, port_text = name.rpartition(":")
    if not port_text.isdigit():
        return AssembledRoutes(config, ())
    port = int(port_text)
    egress = listener_for_port(ctx, port)
    if egress is None:
        return AssembledRoutes(config, ())
    if host:
        return AssembledRoutes(config, _single_service(ctx, egress, port, names.virtual_host(host, port)))
    return AssembledRoutes(config, _host_table(ctx, egress, port).sent)


def _single_service(ctx: ProxyContext, egress: EgressScope, port: int, wanted: str) -> list[SerializedHost]:
    """`<fqdn>:<port>` (a sniffed listener bound to one service's VIP): only that service's
    virtual host, matching every authority, and no catch-all."""
    out = []
    for vhost in _virtual_hosts(ctx, egress, port)[0]:
        if vhost.name == wanted:
            out.append(SerializedHost.outbound(vhost.name, ("*",), vhost.routes, ctx.headers.attempt_count))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class _HostTable:
    """The virtual hosts of one port of one routes view, as sent (`sent`: sorted by name, the
    catch-all last), and what updating them after VirtualServices edited in place needs: where
    each host sits, the domains it claimed, which hosts each VirtualService's routes fill
    (None: it contributes none, its routes being empty on the port), and the warnings each
    source of routes raised (in build order, only the sources that raised some). An update
    shares all but what it changes with the table before (HostBlocks, ShardedMap): its cost
    is the edit's, not the mesh's."""

    version: str
    rules: str
    """The DestinationRules as routes read them, when the table was made or last updated
    (impact.rules_beyond_clusters): a rule changed in nothing routes read reaches no host."""
    services: tuple[Service, ...]
    sent: HostBlocks
    where: Mapping[str, int]
    domains: Mapping[str, tuple[str, ...]]
    by_vs: Mapping[tuple[str, str, str], tuple[str, ...] | None]
    warnings: Mapping[Hashable, tuple[str, ...]]
    defaults: tuple[tuple[str, Service], ...]
    """The hosts sent with a service's default route, and their services."""
    sources: ShardedMap[Hashable, tuple[tuple[Hashable, Any], ...]]
    """The generation-cache entries (key, value) each source of routes was built from (its
    routes, its serialized hosts): an update reads only the edited ones, so the cache forgets
    the others after two versions; a table built again (after a change that reaches further)
    puts them back first, and rebuilds only what the change reaches."""


def _host_table(ctx: ProxyContext, egress: EgressScope, port: int) -> _HostTable:
    """The port's virtual hosts: the table built for the snapshot before, updated in the few
    hosts its VirtualServices edited in place reach (model.changes), else built whole."""
    cache, snapshot = ctx.cache, ctx.snapshot
    key = ("host-table", port, egress.port, egress.protocol, egress.imports, ctx.routes_view(), snapshot.mesh_key)
    previous: _HostTable | None = cache.latest(key) if cache is not None else None
    table = previous
    if table is not None and table.version != snapshot.version:
        table = _updated(ctx, table, egress, port)
    if table is None:
        if cache is not None and previous is not None:
            cache.restore(entry for entries in previous.sources.values() for entry in entries)
        table = _built(ctx, egress, port)
    else:
        ctx.warnings.extend(warning for warnings in table.warnings.values() for warning in warnings)
    if cache is not None:
        cache.remember(key, table)
    return table


def _updated(ctx: ProxyContext, table: _HostTable, egress: EgressScope, port: int) -> _HostTable | None:
    """The table with the hosts whose routes changed rebuilt, after VirtualServices edited in
    place and DestinationRules changed (model.changes): neither changes which hosts there are
    nor the domains each claims. The edited VirtualServices are translated again, or, when
    rules changed in what routes read of them, every source of routes (a rule reaches whatever
    routes to its host), the others found unchanged by their cache keys. None when the change may reach further: it
    was not such a change relative to the table's snapshot, the imported services are other
    objects, an edit emptied or filled a VirtualService's routes on the port, or an edit gave
    warnings to routes that had none (they would come out of order)."""
    changes = ctx.snapshot.routing_changes
    if changes is None or changes.previous_version != table.version or egress.services is not table.services:
        return None
    seen = _rules_seen(ctx)
    rules = changes.rules and seen != table.rules
    start = len(ctx.warnings)
    sent: dict[int, SerializedHost] = {}
    warnings = {} if rules else dict(table.warnings)
    services = _http_services(ctx, egress, port)
    sources: dict[Hashable, tuple[tuple[Hashable, Any], ...]] = {}

    def refill(source: Hashable, names_: Iterable[str], routes: list[bytes], raised: tuple[str, ...],
               used: list[Hashable]) -> bool:
        if raised:
            if not rules and source not in warnings:
                return False
            warnings[source] = raised
        else:
            warnings.pop(source, None)
        for name in names_:
            sent[table.where[name]] = _serialized(ctx, name, table.domains[name], routes, used)
        if tuple(used) != tuple(key for key, _ in table.sources.get(source) or ()):
            sources[source] = _entries(ctx, used)
        return True

    for vs in egress.virtual_services if rules else (new for _, new in changes.edited):
        key = vs.resource.key
        if key not in table.by_vs:
            continue
        filled = table.by_vs[key]
        before = len(ctx.warnings)
        used: list[Hashable] = []
        routes = _vs_routes(ctx, vs, port, services, used)
        if (filled is None) != (not routes) or not refill(key, filled or (), routes, tuple(ctx.warnings[before:]), used):
            del ctx.warnings[start:]
            return None
    for name, service in table.defaults if rules else ():
        before = len(ctx.warnings)
        used = []
        routes = _default_routes(ctx, service, port, used)
        refill(("default", service.hostname), (name,), routes, tuple(ctx.warnings[before:]), used)
    del ctx.warnings[start:]
    ctx.warnings.extend(warning for raised in warnings.values() for warning in raised)
    return _HostTable(ctx.snapshot.version, seen, table.services, table.sent.replaced(sent), table.where, table.domains,
                      table.by_vs, warnings, table.defaults, table.sources.updated(sources))


def _rules_seen(ctx: ProxyContext) -> str:
    """`_HostTable.rules` (empty without a cache: such a table is never updated)."""
    return rules_beyond_clusters(ctx.snapshot, ctx.cache) if ctx.cache is not None else ""


def _entries(ctx: ProxyContext, used: list[Hashable]) -> tuple[tuple[Hashable, Any], ...]:
    """The cache entries a source of routes comes from, as (key, value)."""
    cache = ctx.cache
    return tuple((key, cache.latest(key)) for key in used) if cache is not None else ()


def _built(ctx: ProxyContext, egress: EgressScope, port: int) -> _HostTable:
    used: dict[Hashable, list[Hashable]] = {}
    vhosts, by_vs, warnings = _virtual_hosts(ctx, egress, port, used)
    known = {service.hostname for vhost in vhosts for service in vhost.services}
    claimed: set[str] = set()
    built: list[SerializedHost] = []
    domains_of: dict[str, tuple[str, ...]] = {}
    for vhost in vhosts:
        domains = []
        for domain, expanded in _domains(ctx, vhost):
            lowered = domain.lower()
            if lowered in claimed or (expanded and domain in known):
                continue
            claimed.add(lowered)
            domains.append(domain)
        if domains:
            domains_of[vhost.name] = tuple(domains)
            built.append(_serialized(ctx, vhost.name, domains_of[vhost.name], vhost.routes, used[vhost.source]))
    catch_all = ("catch-all", ctx.fallthrough_cluster, ctx.proxy.istio_extensions, ctx.headers.attempt_count)
    used[catch_all] = [catch_all]
    sent = (*sorted(built, key=lambda v: v.name), ctx.memo(catch_all, lambda: SerializedHost.of(_catch_all(ctx))))
    kept = {vs: tuple(name for name in filled if name in domains_of) if filled is not None else None
            for vs, filled in by_vs.items()}
    defaults = tuple((vhost.name, vhost.services[0]) for vhost in vhosts
                     if vhost.name in domains_of and vhost.default and vhost.services)
    sources = ShardedMap({source: _entries(ctx, keys_used) for source, keys_used in used.items()})
    return _HostTable(ctx.snapshot.version, _rules_seen(ctx), egress.services, HostBlocks(sent), {host.name: i for i, host in enumerate(sent)},
                      domains_of, kept, warnings, defaults, sources)


def _serialized(ctx: ProxyContext, name: str, domains: tuple[str, ...], routes: list[bytes],
                used: list[Hashable]) -> SerializedHost:
    """A virtual host serialized once for as long as its name, domains and routes stay (its
    cache key added to `used`)."""

    def serialize() -> SerializedHost:
        return SerializedHost.outbound(name, domains, routes, ctx.headers.attempt_count)

    if ctx.cache is None:
        return serialize()
    key = ("vhost", name, domains, Same(routes), ctx.headers.attempt_count)
    used.append(key)
    return ctx.memo(key, serialize)


def listener_for_port(ctx: ProxyContext, port: int) -> EgressScope | None:
    """The egress listener that owns a port: an explicit port listener, else the catch-all."""
    for egress in ctx.scope.egress:
        if egress.port == port:
            return egress
    for egress in ctx.scope.egress:
        if egress.catch_all:
            return egress
    return None


def _http_services(ctx: ProxyContext, egress: EgressScope, port: int) -> dict[str, Service]:
    """The imported services with an HTTP (or unsniffed) port `port`, by host."""
    return ctx.memo(("http-services", Same(egress.services), port), lambda: {
        s.hostname: s for s in egress.services
        if (p := s.port(port)) is not None and (p.protocol in protocols.HTTP_FAMILY or p.protocol == protocols.UNSUPPORTED)
    })


def _vs_routes(ctx: ProxyContext, vs: VirtualServiceView, port: int, services: Mapping[str, Service],
               used: list[Hashable]) -> list[bytes]:
    """A VirtualService's routes on the port, serialized, kept for as long as what they read
    (with a cache: its key added to `used`)."""
    if ctx.cache is None:  # nothing to look the key up in, and nothing to restore it from
        return _sidecar_routes(ctx, vs, port, services)
    in_scope = tuple(services[h].source.revision if h in services else None for h in vs.http_destinations)
    routes_key = ("vs-routes", vs.resource.revision, port, _source_key(ctx, vs), ctx.proxy.istio_extensions,
                  ctx.snapshot.destination_inputs(ctx.proxy, vs), in_scope)
    used.append(routes_key)
    return ctx.memo(routes_key, lambda: _sidecar_routes(ctx, vs, port, services))


def _default_routes(ctx: ProxyContext, service: Service, port: int, used: list[Hashable]) -> list[bytes]:
    """A service's default route, serialized (see _vs_routes)."""
    if ctx.cache is None:
        return [_default_route(ctx, service, port).SerializeToString(deterministic=True)]
    rule = ctx.rule_for(service)
    memo_key = ("default-route", service.source.revision, service.hostname, port, ctx.proxy.istio_extensions,
                tuple(r.revision for r in rule.resources) if rule else None)
    used.append(memo_key)
    return ctx.memo(memo_key, lambda: [_default_route(ctx, service, port).SerializeToString(deterministic=True)])


def _virtual_hosts(ctx: ProxyContext, egress: EgressScope, port: int, used: dict[Hashable, list[Hashable]] | None = None,
                   ) -> tuple[list[_VirtualHost], dict[tuple[str, str, str], tuple[str, ...] | None],
                              dict[Hashable, tuple[str, ...]]]:
    """The port's virtual hosts in build order; for each VirtualService, the hosts its routes
    fill (None: its routes are empty on the port); the warnings each source of routes raised.
    `used` collects the cache keys each source of routes read."""
    used = used if used is not None else {}
    services = _http_services(ctx, egress, port)
    wildcard_owner = _most_specific_wildcards(egress.virtual_services, services)
    vhosts: dict[str, _VirtualHost] = {}
    covered: set[str] = set()
    by_vs: dict[tuple[str, str, str], tuple[str, ...] | None] = {}
    warnings: dict[Hashable, tuple[str, ...]] = {}
    for index, vs in enumerate(egress.virtual_services):
        before = len(ctx.warnings)
        routes = _vs_routes(ctx, vs, port, services, used.setdefault(vs.resource.key, []))
        if len(ctx.warnings) > before:
            warnings[vs.resource.key] = tuple(ctx.warnings[before:])
        by_vs[vs.resource.key] = None if not routes else ()
        if not routes:
            continue
        if port != 80 and not _names_a_service(vs, services):
            continue
        registry, others = _split_hosts(vs, index, services, wildcard_owner)
        covered.update(service.hostname for service in registry)
        filled = []
        for host in others:
            key = names.virtual_host(host, port)
            if key not in vhosts:
                vhosts[key] = _VirtualHost(key, [], [host], routes, source=vs.resource.key)
                filled.append(key)
        for service in registry:
            key = names.virtual_host(service.hostname, port)
            if key not in vhosts:
                vhosts[key] = _VirtualHost(key, [service], [], routes, source=vs.resource.key)
                filled.append(key)
        by_vs[vs.resource.key] = tuple(filled)
    for hostname, service in services.items():
        if hostname in covered or service.resolution == ALIAS:
            continue
        key = names.virtual_host(hostname, port)
        if key not in vhosts:
            before = len(ctx.warnings)
            source = ("default", hostname)
            vhosts[key] = _VirtualHost(key, [service], [], _default_routes(ctx, service, port, used.setdefault(source, [])),
                                       default=True, source=source)
            if len(ctx.warnings) > before:
                warnings[("default", hostname)] = tuple(ctx.warnings[before:])
    return list(vhosts.values()), by_vs, warnings


def _source_key(ctx: ProxyContext, vs: VirtualServiceView) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What of the proxy itself a VirtualService's HTTP routes read (`ctx.applies`): its namespace
    if a match names a source namespace, its labels if one names source labels. Otherwise the
    routes are the same for every proxy of every namespace (what they read of DestinationRules
    is in `destination_inputs`), and are built once for all of them."""
    matches_ = [match for rule in vs.spec.http for match in rule.match]
    namespace = ctx.proxy.namespace if any(match.source_namespace for match in matches_) else ""
    labels = tuple(sorted(ctx.proxy.labels.items())) if any(match.source_labels for match in matches_) else ()
    return namespace, labels


def _most_specific_wildcards(virtual_services: Sequence[VirtualServiceView], services: Mapping[str, Service]) -> dict[str, int]:
    """For each service no VirtualService names exactly, the VirtualService whose wildcard host
    matches it most specifically (the oldest among equals). An exact host always wins: a
    service named by some VirtualService is claimed by no wildcard one (Istio's
    computeWildcardHostVirtualServiceIndex)."""
    exact = {host for vs in virtual_services for host in vs.hosts if not host.startswith("*")}
    owner: dict[str, tuple[tuple[int, int], int]] = {}
    for index, vs in enumerate(virtual_services):
        for host in vs.hosts:
            if not host.startswith("*"):
                continue
            for hostname in services:
                if hostname not in exact and matches(host, hostname):
                    rank = specificity(host)
                    if hostname not in owner or rank < owner[hostname][0]:
                        owner[hostname] = (rank, index)
    return {hostname: index for hostname, (_, index) in owner.items()}


def _names_a_service(vs: VirtualServiceView, services: Mapping[str, Service]) -> bool:
    """Whether any host of the VirtualService matches a service on the port, either way round
    (off port 80, Istio uses only such VirtualServices)."""
    return any(host in services or any(intersects(host, hostname) for hostname in services) for host in vs.hosts)


def _split_hosts(vs: VirtualServiceView, index: int, services: Mapping[str, Service],
                 wildcard_owner: Mapping[str, int]) -> tuple[list[Service], list[str]]:
    """Istio's separateVSHostsAndServices: the registry services the VirtualService's hosts name
    (exact hosts first, then those a wildcard host matches when this VirtualService is the
    service's most specific wildcard one), and its hosts that match no service."""
    registry: list[Service] = []
    others: list[str] = []
    for host in vs.hosts:
        if host.startswith("*"):
            continue
        if host in services:
            registry.append(services[host])
        else:
            others.append(host)
    for host in vs.hosts:
        if not host.startswith("*"):
            continue
        found = False
        for hostname, service in services.items():
            if matches(host, hostname) or matches(hostname, host):
                found = True
                if wildcard_owner.get(hostname) == index and service not in registry:
                    registry.append(service)
        if not found:
            others.append(host)
    return registry, others


def vs_routes(ctx: ProxyContext, vs: VirtualServiceView, port: int, services: Mapping[str, Service], *,
              gateways: frozenset[str] = MESH_ONLY, tls: bool = False) -> list[rc.Route]:
    """Routes of one VirtualService on one port (Istio's BuildHTTPRoutesForVirtualService);
    stops after the first catch-all route. `gateways` are who asks (`mesh` for sidecars, the
    server's gateway on a gateway); `services` resolve destination hosts (aliases, single-port
    services); `tls` is a gateway server with TLS settings (redirects default to https)."""
    metadata = base_pb2.Metadata()
    istio_metadata(metadata, {"config": config_path(vs.resource)})

    def made(rule: HTTPRoute, match: HTTPMatchRequest | None) -> tuple[rc.Route, bool] | None:
        route = httproute.build_route(rule, match, vs_name=vs.name, metadata=metadata, listener_port=port,
                                      cluster_of=lambda d: destination_cluster(ctx, vs, d, port, services),
                                      hash_of=lambda d: destination_hash(ctx, vs, d),
                                      grpc_timeout_header=not ctx.proxy.istio_extensions, tls=tls,
                                      gateway_semantics=vs.gateway_semantics)
        return None if route is None else (route, httproute.is_catch_all(route))

    return _each_route(ctx, vs, port, gateways, made)


def _sidecar_routes(ctx: ProxyContext, vs: VirtualServiceView, port: int, services: Mapping[str, Service]) -> list[bytes]:
    """`vs_routes` for a sidecar, serialized, rendered from templates where their shape allows
    (generate.routeshapes)."""
    config, name, semantics = config_path(vs.resource), vs.name, vs.gateway_semantics
    grpc_timeout_header = not ctx.proxy.istio_extensions

    def cluster_of(destination: Destination) -> str:
        return destination_cluster(ctx, vs, destination, port, services)

    def hash_of(destination: Destination) -> rc.RouteAction.HashPolicy | None:
        return destination_hash(ctx, vs, destination)

    def made(rule: HTTPRoute, match: HTTPMatchRequest | None) -> tuple[bytes, bool] | None:
        return ctx.route_shapes.route(rule, match, config=config, vs_name=name, port=port, cluster_of=cluster_of,
                                      hash_of=hash_of, grpc_timeout_header=grpc_timeout_header,
                                      gateway_semantics=semantics)

    return _each_route(ctx, vs, port, MESH_ONLY, made)


def _each_route(ctx: ProxyContext, vs: VirtualServiceView, port: int, gateways: frozenset[str],
                made: Callable[[HTTPRoute, HTTPMatchRequest | None], tuple[R, bool] | None]) -> list[R]:
    """The routes `made` makes (each with whether it catches every request) of each rule and
    match that applies to who asks, in order, up to the first that catches all."""
    out: list[R] = []
    for rule in vs.spec.http:
        matches_: Sequence[HTTPMatchRequest | None] = rule.match or (None,)
        stop = False
        for match in matches_:
            if match is not None and not ctx.applies(match, port, gateways, vs.namespace):
                continue
            route = made(rule, match)
            if route is None:
                continue
            out.append(route[0])
            if match is None or route[1]:
                stop = True
                break
        if stop or not rule.match:
            break
    return out


def destination_cluster(ctx: ProxyContext, vs: VirtualServiceView, destination: Destination, port: int,
                        services: Mapping[str, Service]) -> str:
    """`outbound|PORT|SUBSET|HOST` for a destination: explicit port, else the service's only
    port, else the listener port (Istio's GetDestinationCluster); an ExternalName alias points
    at its concrete service."""
    host = vs.host(destination.host)
    service = services.get(host)
    if service is not None and service.resolution == ALIAS and service.alias_for:
        host = service.alias_for
    number = destination.port.number if destination.port else 0
    if not number and service is not None and len(service.ports) == 1:
        number = service.ports[0].port
    number = number or port
    _check_destination(ctx, vs, host, destination.subset)
    return names.outbound_cluster(number, host, destination.subset)


def _check_destination(ctx: ProxyContext, vs: VirtualServiceView, host: str, subset: str) -> None:
    """Warn (once per proxy) about destinations the inputs cannot back: Envoy would answer 503."""
    known = ctx.snapshot.registry.services_for_host(host)
    status = 500 if vs.gateway_semantics else 503
    if not known:
        if host and not host.startswith("*"):
            ctx.warnings.append(f"{vs.resource.ref()}: destination host {host} is not a service in the inputs; "
                                f"requests routed to it will fail with {status}")
        return
    if subset:
        rule = ctx.snapshot.destination_rule(ctx.proxy, host, known[0].namespace)
        if rule is None or rule.subset(subset) is None:
            ctx.warnings.append(f"{vs.resource.ref()}: subset {subset!r} of {host} is defined by no DestinationRule; "
                                f"requests routed to it will fail with {status}")


def destination_hash(ctx: ProxyContext, vs: VirtualServiceView,
                     destination: Destination) -> rc.RouteAction.HashPolicy | None:
    host = vs.host(destination.host)
    services = ctx.snapshot.registry.services_for_host(host)
    namespace = services[0].namespace if services else vs.namespace
    rule = ctx.snapshot.destination_rule(ctx.proxy, host, namespace)
    if rule is None:
        return None
    number = destination.port.number if destination.port else 0
    subset = rule.subset(destination.subset) if destination.subset else None
    subset_policy = subset.traffic_policy if subset else None
    chosen = (policy.port_hash(subset_policy, number) or policy.consistent_hash(subset_policy)
              or policy.port_hash(rule.traffic_policy, number) or policy.consistent_hash(rule.traffic_policy))
    return hash_policy(chosen) if chosen else None


def hash_policy(consistent: ConsistentHashLB) -> rc.RouteAction.HashPolicy | None:
    out = rc.RouteAction.HashPolicy()
    if consistent.http_header_name:
        out.header.header_name = consistent.http_header_name
    elif consistent.http_cookie is not None:
        cookie = consistent.http_cookie
        out.cookie.name = cookie.name
        out.cookie.path = cookie.path
        if cookie.ttl:
            set_duration(out.cookie.ttl, cookie.ttl)
        for attribute in cookie.attributes:
            out.cookie.attributes.add(name=attribute.name, value=attribute.value)
    elif consistent.use_source_ip:
        out.connection_properties.source_ip = True
    elif consistent.http_query_parameter_name:
        out.query_parameter.name = consistent.http_query_parameter_name
    else:
        return None
    return out


def _default_route(ctx: ProxyContext, service: Service, port: int) -> rc.Route:
    """The route of a service no VirtualService covers: all paths to its default cluster."""
    cluster = names.outbound_cluster(port, service.hostname)
    route = rc.Route(name="default")
    route.match.prefix = "/"
    action = route.route
    action.cluster = cluster
    httproute.set_timeouts(action, 0, grpc_timeout_header=not ctx.proxy.istio_extensions)
    rule = ctx.rule_for(service)
    consistent = None
    if rule is not None:
        consistent = policy.port_hash(rule.traffic_policy, port) or policy.consistent_hash(rule.traffic_policy)
    action.retry_policy.CopyFrom(httproute.default_retry_policy())
    if consistent:
        hashed = hash_policy(consistent)
        if hashed is not None:
            action.hash_policy.append(hashed)
    route.decorator.operation = f"{service.hostname}:{port}/*"
    return route


def _catch_all(ctx: ProxyContext) -> rc.VirtualHost:
    if ctx.scope.outbound_mode == "REGISTRY_ONLY":
        vhost = rc.VirtualHost(name="block_all", domains=["*"], include_request_attempt_count=ctx.headers.attempt_count)
        route = vhost.routes.add(name="block_all")
        route.match.prefix = "/"
        route.direct_response.status = 502
        return vhost
    vhost = rc.VirtualHost(name="allow_any", domains=["*"], include_request_attempt_count=ctx.headers.attempt_count)
    route = vhost.routes.add(name="allow_any")
    route.match.prefix = "/"
    route.route.cluster = ctx.fallthrough_cluster
    httproute.set_timeouts(route.route, 0, grpc_timeout_header=not ctx.proxy.istio_extensions)
    return vhost


def _domains(ctx: ProxyContext, vhost: _VirtualHost) -> Iterable[tuple[str, bool]]:
    """(domain, whether it is an expansion of a host) for a virtual host, in Istio's order."""
    for host in vhost.hosts:
        yield host, False
    for service in vhost.services:
        yield from service_domains(ctx, service)


def service_domains(ctx: ProxyContext, service: Service) -> list[tuple[str, bool]]:
    """Istio's domain list for a service's virtual host (translation-spec §1.4): its host, then
    the host's other spellings for this proxy, the same for each ExternalName alias of it, the
    `*.` forms of all of them for a headless Kubernetes service, then its address. Each domain
    says whether it is an expansion (which never takes the place of a service's real host)."""
    out: list[tuple[str, bool]] = []
    for hostname in (service.hostname, *ctx.snapshot.registry.aliases_of(service.hostname)):
        out.append((hostname, False))
        out.extend((alt, True) for alt in alternate_hosts(hostname, ctx.proxy.dns_domain))
    if service.resolution == PASSTHROUGH_RESOLUTION and service.from_kubernetes:
        out.extend([("*." + domain, expanded) for domain, expanded in out])
    if service.has_vip:
        out.append((service.address, False))
    return out


def alternate_hosts(hostname: str, proxy_domain: str) -> list[str]:
    """Istio's GenerateAltVirtualHosts: the absolute `host.` form, then the short names a client
    in `proxy_domain` (its DNS search domain, `ns.svc.cluster.local`) may use. Only names in the
    proxy's Kubernetes cluster suffix are shortened (never to a bare name from another
    namespace); outside Kubernetes, names sharing a suffix with the proxy's domain are."""
    out = [] if is_ip(hostname) else [hostname + "."]
    at = proxy_domain.find(".svc.")
    if at >= 0:
        if not hostname.endswith(proxy_domain[at:]):
            return out
        service_at = hostname.find(".svc.")
        first_dot = hostname.find(".")
        if service_at <= 0 or first_dot + 1 > service_at:
            return out
        qualified = hostname[:service_at]
        if qualified[first_dot + 1:] == proxy_domain[:at]:
            return [*out, hostname[:first_dot], qualified + ".svc", qualified]
        return [*out, qualified, qualified + ".svc"]
    host_parts, domain_parts = hostname.split("."), proxy_domain.split(".")
    shared = 0
    while (shared < min(len(host_parts), len(domain_parts))
           and host_parts[-1 - shared] == domain_parts[-1 - shared]):
        shared += 1
    if shared == 0:
        return out
    unique = host_parts[: len(host_parts) - shared]
    out.append(".".join(unique))
    if len(unique) == 2:
        out.append(".".join(unique) + "." + host_parts[len(host_parts) - shared])
    return out
