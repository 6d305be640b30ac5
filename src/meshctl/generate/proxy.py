"""The whole config of one proxy: clusters, endpoints, listeners and routes, in push order.

`generate` is the single entry point shared by `translate`, `serve` and `proxy-status`: a pure
function of (snapshot, proxy). Route configurations are the ones the listeners ask for (in the
order they first ask), exactly as Envoy would request them over RDS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from meshctl.generate.cache import GenerationCache
from meshctl.generate.clusters import build_clusters
from meshctl.generate.context import ProxyContext
from meshctl.generate.endpoints import build_endpoints
from meshctl.generate.inbound import build_inbound_listeners
from meshctl.generate.listeners import build_listeners
from meshctl.generate.routes import route_configuration
from meshctl.model.proxy import Proxy
from meshctl.model.snapshot import MeshSnapshot
from meshctl.xds import resources


@dataclass(slots=True)
class ProxyConfig:
    clusters: list[cluster_pb2.Cluster] = field(default_factory=list)
    endpoints: list[endpoint_pb2.ClusterLoadAssignment] = field(default_factory=list)
    listeners: list[listener_pb2.Listener] = field(default_factory=list)
    routes: list[route_pb2.RouteConfiguration] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cache: GenerationCache | None = None

    def packed(self) -> dict[str, dict[str, resources.Packed]]:
        """Each resource serialized once, keyed by type URL and name (the ADS server's unit).

        With a cache, messages reused from an earlier generation keep their serialized bytes.
        """
        pack = self.cache.pack if self.cache is not None else resources.Packed.of
        return {
            resources.CLUSTER: resources.by_name(pack(c.name, c) for c in self.clusters),
            resources.ENDPOINT: resources.by_name(pack(e.cluster_name, e) for e in self.endpoints),
            resources.LISTENER: resources.by_name(pack(item.name, item) for item in self.listeners),
            resources.ROUTE: resources.by_name(pack(r.name, r) for r in self.routes),
        }


def generate(snapshot: MeshSnapshot, proxy: Proxy, cache: GenerationCache | None = None) -> ProxyConfig:
    """Everything Istio would send this proxy (sidecar), deterministic for equal inputs.

    With a cache, pieces whose inputs are unchanged since an earlier call are reused (the
    result is the same; see GenerationCache). Returned messages may be shared: never modify them.
    """
    if cache is not None:
        cache.begin(snapshot.version)
    ctx = ProxyContext(snapshot, proxy, snapshot.scope_for(proxy), cache)
    clusters = build_clusters(ctx)
    listeners = build_listeners(ctx) + build_inbound_listeners(ctx)
    routes = [route_configuration(ctx, name) for name in ctx.route_names]
    endpoints = build_endpoints(ctx, clusters)
    return ProxyConfig(clusters, endpoints, listeners, routes, list(dict.fromkeys(ctx.warnings)), cache)
