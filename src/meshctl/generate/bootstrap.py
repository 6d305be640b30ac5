"""Envoy bootstraps: one that runs Envoy as a workload's sidecar against `meshctl serve`, and a
static one that lets `envoy --mode validate` judge generated config.

The sidecar bootstrap is what `meshctl agent` starts Envoy with (and `meshctl bootstrap`
prints): xDS from serve, secrets from the agent's SDS socket. This module is imported by the
agent at start, so it imports only what that bootstrap needs.

Validation turns the dynamic pieces into static ones (EDS clusters get their endpoints inline,
RDS listeners get their routes inline) so Envoy checks every resource and every reference
between them, exactly the way it would on an ADS push, without a control plane.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from meshctl.generate.protobuf import typed
from meshctl.model.secrets import AGENT_CLUSTER, AGENT_SOCKET

if TYPE_CHECKING:
    from meshctl.generate.proxy import ProxyConfig
    from meshctl.model.meshconfig import MeshConfig
    from meshctl.model.proxy import Proxy

XDS_CLUSTER = "xds-grpc"
HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
ISTIO_META_PREFIX = "ISTIO_META_"


def h2_options() -> http_protocol_options_pb2.HttpProtocolOptions:
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.SetInParent()
    return options


def sds_cluster(socket: str = AGENT_SOCKET) -> cluster_pb2.Cluster:
    """The `sds-grpc` cluster every Istio TLS context refers to: the agent's Unix socket."""
    cluster = cluster_pb2.Cluster(name=AGENT_CLUSTER, type=cluster_pb2.Cluster.STATIC)
    cluster.connect_timeout.seconds = 1
    cluster.typed_extension_protocol_options[HTTP_OPTIONS_KEY].CopyFrom(typed(h2_options()))
    endpoint = cluster.load_assignment.endpoints.add().lb_endpoints.add().endpoint
    cluster.load_assignment.cluster_name = AGENT_CLUSTER
    endpoint.address.pipe.path = socket
    return cluster


def _control_plane_cluster(name: str, addresses: Sequence[tuple[str, int]]) -> cluster_pb2.Cluster:
    """A static HTTP/2 cluster to meshctl serve (xDS is gRPC), one endpoint per
    replica, with TCP keepalives so Envoy notices a dead server and reconnects: a new stream
    goes to the next endpoint (round robin), so a replica that died is left behind at once."""
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.STATIC)
    if not all(_is_ip(host) for host, _ in addresses):
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
    cluster.connect_timeout.seconds = 1
    cluster.typed_extension_protocol_options[HTTP_OPTIONS_KEY].CopyFrom(typed(h2_options()))
    threshold = cluster.circuit_breakers.thresholds.add()
    threshold.max_connections.value = threshold.max_pending_requests.value = 100000
    threshold.max_requests.value = threshold.max_retries.value = 100000
    keepalive = cluster.upstream_connection_options.tcp_keepalive
    keepalive.keepalive_time.value = 300
    keepalive.keepalive_interval.value = 30
    cluster.load_assignment.cluster_name = name
    locality = cluster.load_assignment.endpoints.add()
    for host, port in addresses:
        socket = locality.lb_endpoints.add().endpoint.address.socket_address
        socket.address = host
        socket.port_value = port
    return cluster


def _is_ip(host: str) -> bool:
    from meshctl.config.values import is_ip

    return is_ip(host)


def ads_bootstrap(proxy: Proxy, xds_host: str, xds_port: int, *, admin_port: int, delta: bool = False,
                  service_account: str = "default", sds_socket: str = AGENT_SOCKET,
                  more_replicas: Sequence[tuple[str, int]] = (),
                  mesh: MeshConfig | None = None) -> bootstrap_pb2.Bootstrap:
    """A bootstrap that makes Envoy this workload's sidecar: Istio's node id and metadata, every
    dynamic resource over one ADS stream to `xds_host:xds_port` or any of `more_replicas` (the
    stream reconnects to another when its replica goes away), and its certificates from the
    agent at `sds_socket`.

    The mesh's `defaultConfig.proxyMetadata` reaches the node metadata as istio-agent passes it:
    `ISTIO_META_NAME` becomes `NAME`."""
    bootstrap = bootstrap_pb2.Bootstrap()
    node = bootstrap.node
    node.id = proxy.node_id
    owner = proxy.workload.owner if proxy.workload else proxy.pod_name
    node.cluster = f"{owner}.{proxy.namespace}"
    node.metadata.update({
        "NAMESPACE": proxy.namespace,
        "LABELS": dict(proxy.labels),
        "INTERCEPTION_MODE": proxy.interception,
        "CLUSTER_ID": proxy.cluster_id,
        "ISTIO_VERSION": proxy.istio_version,
        "SERVICE_ACCOUNT": service_account,
        "WORKLOAD_NAME": owner,
        "INSTANCE_IPS": proxy.ip,
        "POD_NAME": proxy.pod_name,
    })
    metadata = mesh.default_config.view.proxy_metadata if mesh is not None else {}
    for key, value in sorted(metadata.items()):
        if key.startswith(ISTIO_META_PREFIX) and len(key) > len(ISTIO_META_PREFIX):
            node.metadata.update({key[len(ISTIO_META_PREFIX):]: value})
    dynamic = bootstrap.dynamic_resources
    ads = dynamic.ads_config
    ads.api_type = config_source_pb2.ApiConfigSource.DELTA_GRPC if delta else config_source_pb2.ApiConfigSource.GRPC
    ads.transport_api_version = config_source_pb2.V3
    ads.set_node_on_first_message_only = True
    ads.grpc_services.add().envoy_grpc.cluster_name = XDS_CLUSTER
    for source in (dynamic.cds_config, dynamic.lds_config):
        source.ads.SetInParent()
        source.initial_fetch_timeout.SetInParent()
        source.resource_api_version = config_source_pb2.V3
    static = bootstrap.static_resources
    static.clusters.append(_control_plane_cluster(XDS_CLUSTER, [(xds_host, xds_port), *more_replicas]))
    static.clusters.append(sds_cluster(sds_socket))
    admin = bootstrap.admin.address.socket_address
    admin.address = "127.0.0.1"
    admin.port_value = admin_port
    return bootstrap


def static_bootstrap(proxy: Proxy, config: ProxyConfig) -> bootstrap_pb2.Bootstrap:
    """Every generated resource as static config: EDS inlined into clusters, RDS into listeners."""
    bootstrap = bootstrap_pb2.Bootstrap()
    bootstrap.node.id = proxy.node_id
    bootstrap.node.cluster = proxy.workload.owner if proxy.workload else proxy.pod_name
    assignments = {cla.cluster_name: cla for cla in config.endpoints}
    routes = {route.name: route for route in config.routes}
    static = bootstrap.static_resources
    for cluster in config.clusters:
        copy = static.clusters.add()
        copy.CopyFrom(cluster)
        if copy.type == cluster_pb2.Cluster.EDS:
            name = copy.eds_cluster_config.service_name or copy.name
            copy.ClearField("eds_cluster_config")
            copy.type = cluster_pb2.Cluster.STATIC
            copy.load_assignment.CopyFrom(assignments.get(name) or endpoint_pb2.ClusterLoadAssignment())
            copy.load_assignment.cluster_name = copy.name
    static.clusters.append(sds_cluster())
    for listener in config.listeners:
        copy = static.listeners.add()
        copy.CopyFrom(listener)
        _inline_routes(copy, routes)
    return bootstrap


def _inline_routes(listener: listener_pb2.Listener, routes: dict[str, object]) -> None:
    from meshctl.generate.filters import HCM

    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    for chain in chains:
        for item in chain.filters:
            if item.name != HCM:
                continue
            manager = hcm_pb2.HttpConnectionManager()
            item.typed_config.Unpack(manager)
            if not manager.HasField("rds"):
                continue
            name = manager.rds.route_config_name
            route = routes.get(name)
            manager.ClearField("rds")
            manager.route_config.name = name
            if route is not None:
                manager.route_config.CopyFrom(route)
            item.typed_config.CopyFrom(typed(manager))
