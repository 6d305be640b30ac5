"""The whole config of one proxy: clusters, endpoints, listeners and routes, in push order.

`generate` is the single entry point shared by `translate`, `serve` and `proxy-status`: a pure
function of (snapshot, proxy). Route configurations are the ones the listeners ask for (in the
order they first ask), exactly as Envoy would request them over RDS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable, Hashable
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from meshctl.collector import collector_paused
from meshctl.generate.cache import GenerationCache
from meshctl.generate import names
from meshctl.generate.clusters import (
    build_inbound_clusters,
    build_outbound_clusters,
    catch_all_clusters,
    outbound_clusters,
    service_clusters,
    unique_clusters,
)
from meshctl.generate.context import ProxyContext
from meshctl.generate.endpoints import assignment, build_endpoints, services_by_host
from meshctl.generate.impact import rules_beyond_clusters
from meshctl.generate.inbound import build_inbound_listeners
from meshctl.generate.inbound_policy import InboundPolicy, inbound_policy
from meshctl.generate.listeners import build_listeners
from meshctl.generate.routebytes import AssembledRoutes
from meshctl.generate.routes import route_configuration
from meshctl.generate.tcproutes import stream_routing
from meshctl.memokeys import Same
from meshctl.model.proxy import Proxy
from meshctl.model.service import Service
from meshctl.model.snapshot import MeshSnapshot
from meshctl.resources import BY_TYPE_URL, CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, Packed, ProxyResources, by_name

__all__ = [
    "ProxyConfig",
    "ProxyParts",
    "generate",
    "host_clusters",
    "inbound_clusters",
    "inbound_key",
    "inbound_listeners",
    "packed_resources",
    "policy_filters",
    "route_configurations",
    "view_clusters",
    "view_of",
]


@dataclass(slots=True)
class ProxyConfig:
    clusters: list[cluster_pb2.Cluster] = field(default_factory=list)
    endpoints: list[endpoint_pb2.ClusterLoadAssignment] = field(default_factory=list)
    listeners: list[listener_pb2.Listener] = field(default_factory=list)
    assembled: list[AssembledRoutes] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cache: GenerationCache | None = None
    segments: dict[str, tuple[list[Any], ...]] = field(default_factory=dict)
    secrets: list[secret_pb2.Secret] | None = None
    wire: dict[int, tuple[Any, bytes]] = field(default_factory=dict)
    """Serializations already made of some of the messages (`ProxyContext.wire`)."""

    @property
    def routes(self) -> list[route_pb2.RouteConfiguration]:
        """The route configurations as messages (parsed from their bytes once each: serve
        never reads them so, only what it packs)."""
        return [routes.message for routes in self.assembled]

    def packed(self) -> ProxyResources:
        """Each resource serialized once, keyed by type URL and name (the ADS server's unit).

        With a cache, messages reused from an earlier generation keep their serialized bytes,
        and lists shared by proxies with the same view are packed once for all of them.
        """
        with collector_paused():
            packed = {
                CLUSTER: self._pack(CLUSTER, self.clusters),
                ENDPOINT: self._pack(ENDPOINT, self.endpoints),
                LISTENER: self._pack(LISTENER, self.listeners),
                ROUTE: self._pack(ROUTE, self.assembled),
            }
            if self.secrets is not None:
                packed[SECRET] = self._pack(SECRET, self.secrets)
        return packed

    def _pack(self, type_url: str, items: list[Any]) -> dict[str, Packed]:
        name_of = BY_TYPE_URL[type_url].name_of
        if self.cache is None:
            return by_name(item.packed() if isinstance(item, AssembledRoutes)
                           else Packed.serialized(name_of(item), type_url, self._serialized(item)) for item in items)
        return self.cache.pack_segments(self.segments.get(type_url, (items,)), name_of)

    def _serialized(self, message: Any) -> bytes:
        found = self.wire.get(id(message))
        if found is not None and found[0] is message:
            return found[1]
        data: bytes = message.SerializeToString(deterministic=True)
        return data


def route_configurations(snapshot: MeshSnapshot, proxy: Proxy,
                         cache: GenerationCache | None = None) -> list[AssembledRoutes]:
    """The route configurations `generate` gives the proxy, without building the rest: for a
    caller that knows nothing else can have changed (`generate.impact`)."""
    ctx, view = _context(snapshot, proxy, cache)
    return _routes(ctx, _outbound_listeners(ctx, view)[1])


def view_clusters(snapshot: MeshSnapshot, proxy: Proxy, cache: GenerationCache | None = None, *,
                  endpoints: bool = True) -> tuple[list[cluster_pb2.Cluster], list[endpoint_pb2.ClusterLoadAssignment]]:
    """The outbound clusters `generate` gives the proxy and, if `endpoints`, their endpoints
    (else none), without its listeners, routes and inbound side: the part every proxy of its
    view shares, for a caller that knows nothing else can have changed (`generate.impact`)."""
    ctx, _ = _context(snapshot, proxy, cache)
    outbound = _outbound_clusters(ctx)
    return outbound, (_endpoints(ctx, outbound) if endpoints else [])


def host_clusters(snapshot: MeshSnapshot, proxy: Proxy, hosts: Callable[[str], bool], cache: GenerationCache | None = None,
                  *, endpoints: bool = True) -> tuple[list[cluster_pb2.Cluster], list[endpoint_pb2.ClusterLoadAssignment]]:
    """What `view_clusters` gives of the services whose host `hosts` accepts: their outbound
    clusters, in the order `generate` sends them, and, if `endpoints`, their endpoints. A
    service's clusters and endpoints read nothing of other services, and bear its host in their
    names: a caller that knows which hosts a change can reach compares these alone."""
    ctx, _ = _context(snapshot, proxy, cache)
    clusters = service_clusters(ctx, [service for service in ctx.scope.services if hosts(service.hostname)])
    return clusters, (build_endpoints(ctx, clusters) if endpoints else [])


def inbound_clusters(snapshot: MeshSnapshot, proxy: Proxy, cache: GenerationCache | None = None) -> list[cluster_pb2.Cluster]:
    """The proxy's own clusters `generate` gives it (one per port its workload serves, and the
    inbound passthrough), without building the rest."""
    ctx, _ = _context(snapshot, proxy, cache)
    return _inbound_clusters(ctx)


def inbound_key(snapshot: MeshSnapshot, proxy: Proxy, cache: GenerationCache | None = None) -> Hashable:
    """What the proxy's own side (its inbound clusters and listeners) is made of, and all it is
    made of (`ProxyContext.inbound_key`): where two snapshots give a proxy equal keys, they give
    it the very same inbound side, and a caller comparing them need build it on neither."""
    ctx, _ = _context(snapshot, proxy, cache)
    return ctx.inbound_key()


def _outbound_clusters(ctx: ProxyContext) -> list[cluster_pb2.Cluster]:
    # Clusters and endpoints never read a VirtualService: keyed by content rather than by
    # snapshot, a proxy whose config changed only in VirtualServices keeps the very same lists
    # (and their serialized bytes) instead of reassembling them from cached pieces.
    return ctx.memo_list(("outbound-clusters", _unrouted(ctx)), lambda: build_outbound_clusters(ctx))


def _endpoints(ctx: ProxyContext, outbound: list[cluster_pb2.Cluster]) -> list[endpoint_pb2.ClusterLoadAssignment]:
    # Endpoints read the rules' subsets and TLS modes, not their connection pools or outlier
    # detection: keyed by the rules as they read them, a connection limit changed leaves the
    # list (and its identity) as it was; the clusters it changes have their assignments re-sent
    # by the server all the same (Envoy asks for them again after a cluster update).
    return ctx.memo_by(lambda: ("endpoints", ctx.services_key(), *_beyond_clusters(ctx)),
                       lambda: ctx.same_list(build_endpoints(ctx, outbound)))


def _unrouted(ctx: ProxyContext) -> tuple[Hashable, ...]:
    snapshot = ctx.snapshot
    return (ctx.services_key(), snapshot.mesh_key, snapshot.versions_except("VirtualService"))


def _beyond_clusters(ctx: ProxyContext) -> tuple[Hashable, ...]:
    """The snapshot as what reads neither VirtualServices' HTTP routes nor DestinationRules'
    connection pools and outlier detection sees it (endpoints, outbound listeners): the mesh,
    every other kind's version, and the rules as they read them (impact.rules_beyond_clusters).
    In cache keys only."""
    snapshot, cache = ctx.snapshot, ctx.cache
    assert cache is not None, "a key for the generation cache"
    return (snapshot.mesh_key, snapshot.versions_except("VirtualService", "DestinationRule"),
            rules_beyond_clusters(snapshot, cache))


def _inbound_clusters(ctx: ProxyContext) -> list[cluster_pb2.Cluster]:
    """The proxy's own side, clusters and listeners each rebuilt only when what it reads changes
    (see inbound_key): most changes touch other workloads' endpoints or routing, and leave
    every proxy's inbound alone. Apart, so that a caller wanting only clusters builds no
    listener (`inbound_clusters`). Proxies whose own sides come out equal share them
    (`same_content`)."""
    return ctx.memo(("clusters", ctx.inbound_key()), lambda: ctx.same_content(build_inbound_clusters(ctx)))


def _inbound_listeners(ctx: ProxyContext) -> list[listener_pb2.Listener]:
    return ctx.memo(("listeners", ctx.inbound_key()), lambda: ctx.same_content(build_inbound_listeners(ctx)))


def policy_filters(snapshot: MeshSnapshot, proxy: Proxy, cache: GenerationCache | None = None) -> InboundPolicy:
    """What the proxy's AuthorizationPolicies and RequestAuthentications add to its inbound
    chains: the one thing `generate` reads of those kinds (`generate.impact.policies_only`)."""
    ctx, _ = _context(snapshot, proxy, cache)
    return inbound_policy(ctx)


def inbound_listeners(snapshot: MeshSnapshot, proxy: Proxy, cache: GenerationCache | None = None) -> list[listener_pb2.Listener]:
    """The inbound listeners `generate` gives the proxy, without building the rest."""
    ctx, _ = _context(snapshot, proxy, cache)
    return _inbound_listeners(ctx)


def _context(snapshot: MeshSnapshot, proxy: Proxy, cache: GenerationCache | None) -> tuple[ProxyContext, tuple[Any, ...]]:
    if cache is not None:
        cache.begin(snapshot.version)
    ctx = ProxyContext(snapshot, proxy, snapshot.scope_for(proxy), cache)
    return ctx, ctx.view_key()


def _outbound_listeners(ctx: ProxyContext, view: tuple[Any, ...]) -> tuple[list[listener_pb2.Listener], list[str]]:
    """Outbound listeners, and the route configurations they ask for, in the order they ask.

    They read VirtualServices only for their TCP and TLS routes, and DestinationRules only for
    what tcp_proxy takes of them: keyed by those rather than by the snapshot, an HTTP routing
    edit or a connection limit changed leaves every listener as it was. Of the node's metadata
    they read its flags (idle timeout, HTTP/1.0), and of its ProxyConfig its proxyHeaders
    (connection managers' and routers' header knobs) and tracing, which the view leaves out:
    proxies that differ in those alone share all but their listeners."""

    def key() -> Hashable:
        return ("outbound-listeners", view[1:], ctx.workload_key(), ctx.proxy.flags, ctx.headers, ctx.tracing,
                *_beyond_clusters(ctx), ctx.memo(("stream-routing", Same(ctx.scope)), lambda: stream_routing(ctx.scope)))

    return ctx.memo_by(key, lambda: (ctx.same_list(build_listeners(ctx)), list(ctx.route_names)))


def _routes(ctx: ProxyContext, names: list[str]) -> list[AssembledRoutes]:
    return ctx.memo(("routes", ctx.routes_key(), tuple(names)), lambda: [route_configuration(ctx, name) for name in names])


def view_of(snapshot: MeshSnapshot, proxy: Proxy) -> tuple[Any, ...]:
    """What makes two proxies of one snapshot see the mesh alike: the same outbound clusters,
    endpoints and route configurations (their listeners and inbound side are their own)."""
    return ProxyContext(snapshot, proxy, snapshot.scope_for(proxy)).view_key()[1:]


def generate(snapshot: MeshSnapshot, proxy: Proxy, cache: GenerationCache | None = None) -> ProxyConfig:
    """Everything Istio would send this proxy (a sidecar, or a gateway), deterministic for
    equal inputs.

    With a cache, pieces whose inputs are unchanged since an earlier call are reused (the
    result is the same; see GenerationCache), and proxies that see the mesh the same way share
    their outbound clusters, endpoints and routes. Returned messages may be shared: never
    modify them.
    """
    with collector_paused():
        return _generate(*_context(snapshot, proxy, cache))


def packed_resources(snapshot: MeshSnapshot, proxy: Proxy, cache: GenerationCache) -> ProxyResources:
    """`generate(snapshot, proxy, cache).packed()`, the very same mapping for every sidecar
    made of the same parts: those that see the mesh alike (`view_key`, the DNS domain, the
    workload its tracing tags name, the node's flags, its proxyHeaders and tracing: all the shared outbound
    side reads of a proxy, the union of its pieces' keys) and whose own
    side packs to the same resources. The own side is built (or found) per proxy under its full
    `inbound_key`, so a proxy differing from another in anything its inbound side reads (its IP,
    labels, node metadata...) never receives the other's; past that, a thousand proxies of one
    view cost one assembly per generation instead of a thousand. Sidecars only: a gateway,
    whose whole config reads its own workload, is generated one by one (`generate`)."""
    with collector_paused():
        ctx, view = _context(snapshot, proxy, cache)
        own = (cache.pack_list(_inbound_clusters(ctx), BY_TYPE_URL[CLUSTER].name_of),
               cache.pack_list(_inbound_listeners(ctx), BY_TYPE_URL[LISTENER].name_of))
        key = ("resources", view, proxy.dns_domain, ctx.workload_key(), proxy.flags, ctx.headers, ctx.tracing,
               *map(Same, own))
        return cache.get(key, lambda: _generate(ctx, view).packed())


def _generate(ctx: ProxyContext, view: tuple[Any, ...]) -> ProxyConfig:
    proxy, cache = ctx.proxy, ctx.cache
    if proxy.is_router:
        from meshctl.generate.gateway import build_router

        return build_router(ctx, cache)
    outbound = _outbound_clusters(ctx)
    inbound = _inbound_clusters(ctx)
    endpoints = _endpoints(ctx, outbound)
    outbound_listeners, route_names = _outbound_listeners(ctx, view)
    inbound_listeners = _inbound_listeners(ctx)
    routes = _routes(ctx, route_names)
    # First of duplicate names kept; the outbound part is deduplicated once per view, so that
    # a proxy adds only its own few clusters, and the whole list is made again only when one
    # of its parts is new (not after a routing edit: copying 30,000 clusters would cost more).
    shared, shared_names = ctx.memo(("unique-clusters", Same(outbound)), lambda: _with_names(unique_clusters(outbound)))
    clusters = ctx.memo(("all-clusters", Same(shared), Same(inbound)),
                        lambda: shared + unique_clusters(c for c in inbound if c.name not in shared_names))
    return ProxyConfig(
        clusters, endpoints, outbound_listeners + inbound_listeners, routes,
        list(dict.fromkeys(ctx.warnings)), cache,
        segments={CLUSTER: (outbound, inbound), LISTENER: (outbound_listeners, inbound_listeners)}, wire=ctx.wire,
    )


def _with_names(clusters: list[cluster_pb2.Cluster]) -> tuple[list[cluster_pb2.Cluster], set[str]]:
    return clusters, {cluster.name for cluster in clusters}


class ProxyParts:
    """A sidecar's config a resource at a time: each one exactly what `generate` gives the
    proxy, built by the same functions, for a caller that needs a handful of a thousand
    (`explain` follows one request: one route configuration, one cluster and its endpoints).
    The listeners are built whole, as they decide which route configurations exist. Lookups
    answer None for what `generate` would not give the proxy. Not for routers (gateways),
    whose config is generated only whole (`generate`)."""

    def __init__(self, snapshot: MeshSnapshot, proxy: Proxy) -> None:
        if proxy.is_router:
            raise ValueError(f"{proxy.id} is a router: generate its config whole")
        self._ctx, self._view = _context(snapshot, proxy, None)
        self._listeners: tuple[list[listener_pb2.Listener], list[str]] | None = None
        self._services: dict[str, list[Service]] | None = None
        self._by_host: dict[str, Service] | None = None

    @property
    def warnings(self) -> list[str]:
        """What translating the parts built so far had to say (a part of `generate`'s warnings)."""
        return list(dict.fromkeys(self._ctx.warnings))

    def listeners(self) -> list[listener_pb2.Listener]:
        """Every listener, outbound then inbound, as `generate` orders them."""
        outbound, _ = self._outbound()
        return outbound + _inbound_listeners(self._ctx)

    def route_configuration(self, name: str) -> route_pb2.RouteConfiguration | None:
        """The route configuration `name`, when a listener asks for it."""
        _, route_names = self._outbound()
        return route_configuration(self._ctx, name).message if name in route_names else None

    def cluster(self, name: str) -> cluster_pb2.Cluster | None:
        """The cluster `name`: an outbound one is made only by the services of its host (the
        first made wins, as in `generate`), any other by the catch-alls or the inbound side."""
        for cluster in self._outbound_clusters(name):
            if cluster.name == name:
                return cluster
        if not name.startswith("outbound|"):
            for cluster in catch_all_clusters(self._ctx) + _inbound_clusters(self._ctx):
                if cluster.name == name:
                    return cluster
        return None

    def load_assignment(self, name: str) -> endpoint_pb2.ClusterLoadAssignment | None:
        """The endpoints `generate` sends for the EDS cluster whose service name is `name`."""
        eds = [c for c in self._outbound_clusters(name) if c.type == cluster_pb2.Cluster.EDS
               and (c.eds_cluster_config.service_name or c.name) == name]
        if not eds:
            return None
        if self._by_host is None:
            self._by_host = services_by_host(self._ctx)
        return assignment(self._ctx, name, self._by_host)

    def _outbound(self) -> tuple[list[listener_pb2.Listener], list[str]]:
        if self._listeners is None:
            self._listeners = _outbound_listeners(self._ctx, self._view)
        return self._listeners

    def _outbound_clusters(self, name: str) -> list[cluster_pb2.Cluster]:
        """The outbound clusters of the services whose host `name` (a cluster name) names."""
        parsed = names.parse_cluster(name)
        if parsed is None:
            return []
        if self._services is None:
            self._services = {}
            for service in self._ctx.scope.services:
                self._services.setdefault(service.hostname, []).append(service)
        return [c for service in self._services.get(parsed[3], []) for c in outbound_clusters(self._ctx, service)]
