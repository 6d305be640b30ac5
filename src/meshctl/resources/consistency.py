"""Whether one proxy's resources refer only to each other (go-control-plane's `Snapshot.Consistent`).

Envoy takes names on trust: an EDS cluster waits for a ClusterLoadAssignment of its service name,
a listener's HTTP connection manager for the RouteConfiguration it names, a TLS context for the
SDS secrets it names. When one of them never comes, nothing fails loudly: the cluster or listener
stays warming until its fetch times out. `problems` finds such dangling names (and resources
nothing names) before any Envoy does, so a generator change that breaks them fails a test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2

from meshctl.resources.kinds import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, type_url_of
from meshctl.resources.packed import ProxyResources

__all__ = ["problems", "secret_configs"]

_HCM = type_url_of(hcm_pb2.HttpConnectionManager)
_TLS_CONTEXTS = {type_url_of(tls_pb2.UpstreamTlsContext): tls_pb2.UpstreamTlsContext,
                 type_url_of(tls_pb2.DownstreamTlsContext): tls_pb2.DownstreamTlsContext}


def problems(resources: ProxyResources, agent_serves: Callable[[str], bool]) -> list[str]:
    """Every dangling or unused name among one proxy's resources, one line each (none: consistent).

    - every ClusterLoadAssignment is the service of a CDS cluster of type EDS, and every EDS
      cluster has its ClusterLoadAssignment;
    - every route configuration a listener's HTTP connection manager names over RDS (in any
      filter chain) exists, and every route configuration is named by some listener;
    - every SDS secret a TLS context names can be had: over ADS, one of the served secrets;
      from another source (the node agent's SDS cluster), one `agent_serves`.
    """
    clusters = [cluster_pb2.Cluster.FromString(p.value) for p in resources.get(CLUSTER, {}).values()]
    listeners = [listener_pb2.Listener.FromString(p.value) for p in resources.get(LISTENER, {}).values()]
    found: list[str] = []
    found.extend(_endpoint_problems(clusters, set(resources.get(ENDPOINT, {}))))
    found.extend(_route_problems(listeners, set(resources.get(ROUTE, {}))))
    served = set(resources.get(SECRET, {}))
    for owner, config in secret_configs(clusters, listeners):
        source = config.sds_config.WhichOneof("config_source_specifier")
        if source == "ads" and config.name not in served:
            found.append(f"{owner}: SDS secret {config.name!r} is fetched over ADS but not served")
        elif source != "ads" and not agent_serves(config.name):
            found.append(f"{owner}: SDS secret {config.name!r} is not one the node agent serves")
    return found


def _endpoint_problems(clusters: list[cluster_pb2.Cluster], assignments: set[str]) -> Iterator[str]:
    services: dict[str, str] = {}
    for cluster in clusters:
        if cluster.type == cluster_pb2.Cluster.EDS:
            services.setdefault(cluster.eds_cluster_config.service_name or cluster.name, cluster.name)
    for service, cluster in services.items():
        if service not in assignments:
            yield f"CDS {cluster}: its ClusterLoadAssignment {service!r} is missing from EDS"
    for name in sorted(assignments - set(services)):
        yield f"EDS {name}: no CDS cluster of type EDS has this service name"


def _route_problems(listeners: list[listener_pb2.Listener], routes: set[str]) -> Iterator[str]:
    named: dict[str, str] = {}
    for listener in listeners:
        for chain in _chains(listener):
            for item in chain.filters:
                if item.typed_config.type_url != _HCM:
                    continue
                manager = hcm_pb2.HttpConnectionManager.FromString(item.typed_config.value)
                if manager.HasField("rds"):
                    named.setdefault(manager.rds.route_config_name, listener.name)
    for route, listener in named.items():
        if route not in routes:
            yield f"LDS {listener}: its route configuration {route!r} is missing from RDS"
    for name in sorted(routes - set(named)):
        yield f"RDS {name}: no listener names this route configuration"


def _chains(listener: listener_pb2.Listener) -> Iterator[listener_components_pb2.FilterChain]:
    yield from listener.filter_chains
    if listener.HasField("default_filter_chain"):
        yield listener.default_filter_chain


def secret_configs(clusters: list[cluster_pb2.Cluster], listeners: list[listener_pb2.Listener]
                    ) -> Iterator[tuple[str, secret_pb2.SdsSecretConfig]]:
    """(owner, SDS config) for every secret the TLS transport sockets of these clusters and
    listeners name."""
    for cluster in clusters:
        sockets = [cluster.transport_socket, *(match.transport_socket for match in cluster.transport_socket_matches)]
        for socket in sockets:
            for config in _socket_secrets(socket):
                yield f"CDS {cluster.name}", config
    for listener in listeners:
        for chain in _chains(listener):
            for config in _socket_secrets(chain.transport_socket):
                yield f"LDS {listener.name}", config


def _socket_secrets(socket: base_pb2.TransportSocket) -> Iterator[secret_pb2.SdsSecretConfig]:
    context_class = _TLS_CONTEXTS.get(socket.typed_config.type_url)
    if context_class is None:
        return
    common = context_class.FromString(socket.typed_config.value).common_tls_context
    yield from common.tls_certificate_sds_secret_configs
    if common.HasField("validation_context_sds_secret_config"):
        yield common.validation_context_sds_secret_config
    combined = common.combined_validation_context
    if combined.HasField("validation_context_sds_secret_config"):
        yield combined.validation_context_sds_secret_config
