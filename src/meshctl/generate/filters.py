"""Network and HTTP filters: the HTTP connection manager, Istio's HTTP filter order, tcp_proxy.

Filter order matters to Envoy and to anyone diffing against istiod: metadata exchange, gRPC
stats, ALPN override (outbound), fault, CORS, router (translation-spec §2.6). Istio's private
filters (`istio.*`) are added only for proxies that carry them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2 as grpc_stats_pb2
from envoy.extensions.filters.http.grpc_web.v3 import grpc_web_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.request_id.uuid.v3 import uuid_pb2
from envoy.type.tracing.v3 import custom_tag_pb2
from google.protobuf import wrappers_pb2
from google.protobuf.message import Message

from meshctl.config.kinds.mesh import MeshConfig, Tracing
from meshctl.generate.core import ADS
from meshctl.generate.headers import (
    GATEWAY,
    SIDECAR_INBOUND,
    SIDECAR_OUTBOUND,
    HeaderPolicy,
    header_policy,
    preserve_case_options,
)
from meshctl.generate.protobuf import set_duration, typed, typed_struct
from meshctl import protocols
from meshctl.model.proxy import Proxy
from meshctl.resources import TYPE_PREFIX

__all__ = [
    "DEFAULT_TRACE_SAMPLING",
    "HCM",
    "INBOUND",
    "METADATA_EXCHANGE",
    "NO_POLICY",
    "OUTBOUND",
    "StreamPolicy",
    "TCP_METADATA_EXCHANGE_CONFIG",
    "TCP_PROXY",
    "connection_manager",
    "hcm_filter",
    "http_filters",
    "network_metadata_exchange",
    "node_stream_policy",
    "tcp_proxy",
    "tracing_settings",
]

HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
# Istio's TCP metadata exchange (istio-proxy builds only), on inbound listeners and upstream clusters.
METADATA_EXCHANGE = "istio.metadata_exchange"
TCP_METADATA_EXCHANGE_CONFIG = typed_struct(
    TYPE_PREFIX + "envoy.tcp.metadataexchange.config.MetadataExchange",
    {"protocol": "istio-peer-exchange", "enable_discovery": True},
)
OUTBOUND = SIDECAR_OUTBOUND
INBOUND = SIDECAR_INBOUND
_DRY_RUN_TAGS = (
    ("istio.authorization.dry_run.allow_policy.name", "istio_dry_run_allow_shadow_effective_policy_id"),
    ("istio.authorization.dry_run.allow_policy.result", "istio_dry_run_allow_shadow_engine_result"),
    ("istio.authorization.dry_run.deny_policy.name", "istio_dry_run_deny_shadow_effective_policy_id"),
    ("istio.authorization.dry_run.deny_policy.result", "istio_dry_run_deny_shadow_engine_result"),
)


def _http_filter(name: str, config: Message) -> hcm_pb2.HttpFilter:
    return hcm_pb2.HttpFilter(name=name, typed_config=typed(config))


def _metadata_exchange(direction: str, in_mesh: bool = False) -> hcm_pb2.HttpFilter:
    """Istio's peer metadata filter; `in_mesh` (proxyHeaders' metadataExchangeHeaders IN_MESH)
    keeps the outbound one from sending its headers to clusters outside the mesh."""
    prefix = "upstream" if direction == OUTBOUND else "downstream"
    return hcm_pb2.HttpFilter(
        name=METADATA_EXCHANGE,
        typed_config=typed_struct(
            TYPE_PREFIX + "io.istio.http.peer_metadata.Config",
            {f"{prefix}_discovery": [{"istio_headers": {}}, {"workload_discovery": {}}],
             f"{prefix}_propagation": [{"istio_headers": {"skip_external_clusters": True} if in_mesh else {}}]},
        ),
    )


def http_filters(proxy: Proxy, direction: str, port_protocol: str,
                 policy: Sequence[hcm_pb2.HttpFilter] = (), *, headers: HeaderPolicy | None = None,
                 gateway: bool = False) -> list[hcm_pb2.HttpFilter]:
    """Istio's HTTP filter chain for a sidecar or gateway listener (no telemetry provider);
    `policy` are the authentication and authorization filters, which run right after metadata
    exchange. `headers` says whether the router adds its debug headers and whether a sidecar's
    outbound metadata exchange skips clusters outside the mesh (gateways' never do)."""
    filters: list[hcm_pb2.HttpFilter] = []
    if proxy.istio_extensions:
        in_mesh = headers is not None and headers.mx_in_mesh and direction == OUTBOUND and not gateway
        filters.append(_metadata_exchange(direction, in_mesh))
    filters.extend(policy)
    if port_protocol == protocols.GRPC_WEB:
        filters.append(_http_filter("envoy.filters.http.grpc_web", grpc_web_pb2.GrpcWeb()))
    filters.append(_http_filter("envoy.filters.http.grpc_stats",
                                grpc_stats_pb2.FilterConfig(emit_filter_state=True,
                                                            stats_for_all_methods=wrappers_pb2.BoolValue(value=False))))
    if direction == OUTBOUND and proxy.istio_extensions:
        filters.append(hcm_pb2.HttpFilter(
            name="istio.alpn",
            typed_config=typed_struct(
                TYPE_PREFIX + "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig",
                {"alpn_override": [
                    {"upstream_protocol": "HTTP10", "alpn_override": ["istio-http/1.0", "istio", "http/1.0"]},
                    {"upstream_protocol": "HTTP11", "alpn_override": ["istio-http/1.1", "istio", "http/1.1"]},
                    {"upstream_protocol": "HTTP2", "alpn_override": ["istio-h2", "istio", "h2"]},
                ]},
            ),
        ))
    filters.append(_http_filter("envoy.filters.http.fault", fault_pb2.HTTPFault()))
    filters.append(_http_filter("envoy.filters.http.cors", cors_pb2.Cors()))
    router = router_pb2.Router()
    if headers is not None and headers.suppress_debug:
        router.suppress_envoy_headers = True
    filters.append(_http_filter("envoy.filters.http.router", router))
    return filters


DEFAULT_TRACE_SAMPLING = 1.0
"""istiod's PILOT_TRACE_SAMPLING: the percentage of requests traced when the mesh says nothing."""


def tracing_settings(proxy: Proxy, mesh: MeshConfig) -> Tracing | None:
    """The `tracing` of the ProxyConfig the proxy runs with: its own (its PROXY_CONFIG, or its
    pod's `proxy.istio.io/config` over the mesh's), else the mesh's `defaultConfig`, as
    istiod's ProxyConfigOrDefault gives it. Hashable: keys of what reads it hold it."""
    own = proxy.proxy_tracing
    return own if own is not None else mesh.default_config.view.tracing


def _tracing(proxy: Proxy, mesh: MeshConfig) -> hcm_pb2.HttpConnectionManager.Tracing:
    """Istio's tracing block without a provider: sampling from the proxy's ProxyConfig's
    `tracing.sampling` (`tracing_settings`; istiod's default when 0; over 100 counts as 1),
    the legacy custom tags."""
    mesh_id = mesh.mesh_identity
    settings = tracing_settings(proxy, mesh)
    sampling = settings.sampling if settings is not None and settings.sampling else DEFAULT_TRACE_SAMPLING
    tracing = hcm_pb2.HttpConnectionManager.Tracing()
    tracing.client_sampling.value = 100
    tracing.random_sampling.value = sampling if sampling <= 100 else 1.0
    tracing.overall_sampling.value = 100
    if settings is not None and settings.max_path_tag_length:
        tracing.max_path_tag_length.value = settings.max_path_tag_length
    for tag, key in _DRY_RUN_TAGS:
        custom = tracing.custom_tags.add(tag=tag)
        custom.metadata.kind.request.SetInParent()
        custom.metadata.metadata_key.key = "envoy.filters.http.rbac"
        custom.metadata.metadata_key.path.add(key=key)
    workload = proxy.workload
    literals = (
        ("istio.canonical_revision", workload.canonical_revision if workload else "latest"),
        ("istio.canonical_service", workload.canonical_name if workload else "unknown"),
        ("istio.cluster_id", proxy.cluster_id),
        ("istio.mesh_id", mesh_id),
        ("istio.namespace", proxy.namespace),
    )
    for tag, value in literals:
        tracing.custom_tags.append(custom_tag_pb2.CustomTag(tag=tag, literal=custom_tag_pb2.CustomTag.Literal(value=value)))
    return tracing


def connection_manager(proxy: Proxy, *, stat_prefix: str, direction: str, port_protocol: str, mesh: MeshConfig,
                       rds: str = "", route_config: route_pb2.RouteConfiguration | None = None,
                       policy: Sequence[hcm_pb2.HttpFilter] = (), gateway: bool = False) -> hcm_pb2.HttpConnectionManager:
    """An HCM as Istio builds it: RDS over ADS (outbound, gateways) or an inline route
    (inbound), with the header knobs of the proxy's proxyHeaders (`headers.header_policy`)."""
    headers = header_policy(proxy, mesh)
    manager = hcm_pb2.HttpConnectionManager(stat_prefix=stat_prefix, codec_type=hcm_pb2.HttpConnectionManager.AUTO)
    if rds:
        manager.rds.route_config_name = rds
        manager.rds.config_source.CopyFrom(ADS)
    elif route_config is not None:
        manager.route_config.CopyFrom(route_config)
    manager.http_filters.extend(http_filters(proxy, direction, port_protocol, policy, headers=headers, gateway=gateway))
    if mesh.enable_tracing:
        manager.tracing.CopyFrom(_tracing(proxy, mesh))
    manager.use_remote_address.value = False
    manager.upgrade_configs.add(upgrade_type="websocket")
    # The node's IDLE_TIMEOUT and HTTP10 (Istio's buildHTTPConnectionManager and the listener
    # options of every class: outbound, inbound, gateway).
    if proxy.flags.idle_timeout is not None:
        set_duration(manager.common_http_protocol_options.idle_timeout, proxy.flags.idle_timeout)
    if proxy.flags.http10:
        manager.http_protocol_options.accept_http_10 = True
    if headers.preserve_case:
        preserve_case_options(manager.http_protocol_options)
    manager.stream_idle_timeout.SetInParent()
    manager.normalize_path.value = True
    manager.path_with_escaped_slashes_action = hcm_pb2.HttpConnectionManager.KEEP_UNCHANGED
    manager.request_id_extension.typed_config.CopyFrom(
        typed(uuid_pb2.UuidRequestIdConfig(use_request_id_for_trace_sampling=wrappers_pb2.BoolValue(value=True)))
    )
    manager.proxy_100_continue = True
    headers.apply(manager, GATEWAY if gateway else direction)
    if direction == INBOUND:
        headers.set_client_cert(manager)
        if port_protocol in protocols.H2_FAMILY:
            manager.http2_protocol_options.SetInParent()
    return manager


def hcm_filter(manager: hcm_pb2.HttpConnectionManager) -> lc.Filter:
    return lc.Filter(name=HCM, typed_config=typed(manager))


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """What shapes a `tcp_proxy` beyond its destination (Istio's buildOutboundNetworkFilters;
    tcproutes.stream_policy reads it): the idle timeout (the DestinationRule's own
    `connectionPool.tcp.idleTimeout`, else the node's IDLE_TIMEOUT) and maximum connection
    duration (nanoseconds), hashing by source IP, and the rule's `tunnel` as (`host:port`,
    whether by POST rather than CONNECT)."""

    idle_timeout: int | None = None
    max_connection_duration: int | None = None
    hash_source_ip: bool = False
    tunnel: tuple[str, bool] | None = None


NO_POLICY = StreamPolicy()


def node_stream_policy(proxy: Proxy) -> StreamPolicy:
    """What a tcp_proxy no DestinationRule shapes takes of the node: its IDLE_TIMEOUT (Istio's
    catch-all, passthrough and inbound chains, and routes to a host without a rule)."""
    idle = proxy.flags.idle_timeout
    return NO_POLICY if idle is None else StreamPolicy(idle_timeout=idle)


def tcp_proxy(cluster: str, stat_prefix: str | None = None, *, weighted: Sequence[tuple[str, int]] = (),
              policy: StreamPolicy = NO_POLICY) -> lc.Filter:
    """`tcp_proxy` to one cluster (stat prefix = the cluster) or to weighted clusters, shaped by
    `policy`."""
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix or cluster)
    if weighted:
        for name, weight in weighted:
            proxy.weighted_clusters.clusters.add(name=name, weight=weight)
    else:
        proxy.cluster = cluster
    if policy.idle_timeout is not None:
        set_duration(proxy.idle_timeout, policy.idle_timeout)
    if policy.max_connection_duration is not None:
        set_duration(proxy.max_downstream_connection_duration, policy.max_connection_duration)
    if policy.hash_source_ip:
        proxy.hash_policy.add().source_ip.SetInParent()
    if policy.tunnel is not None:
        proxy.tunneling_config.hostname, proxy.tunneling_config.use_post = policy.tunnel
    return lc.Filter(name=TCP_PROXY, typed_config=typed(proxy))


def network_metadata_exchange() -> lc.Filter:
    """Inbound TCP metadata exchange (istio-proxy only)."""
    return lc.Filter(name=METADATA_EXCHANGE, typed_config=TCP_METADATA_EXCHANGE_CONFIG)
