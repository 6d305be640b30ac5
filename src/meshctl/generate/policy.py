"""DestinationRule traffic policy: which policy applies to a port and subset, and how it maps to a Cluster."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import protocol_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from meshctl import protocols
from meshctl.config.kinds.networking.destination_rule import (
    ConnectionPoolSettings,
    ConsistentHashLB,
    LoadBalancerSettings,
    LocalityLoadBalancerSetting,
    OutlierDetection,
    PortTrafficPolicy,
    RetryBudget,
    TcpKeepalive,
    TrafficPolicy,
)
from meshctl.generate.headers import preserve_case_options
from meshctl.generate.protobuf import MAX_UINT32, set_duration

__all__ = [
    "HttpOptions",
    "apply_connection_pool",
    "apply_h2_streams",
    "apply_h2_upgrade",
    "apply_keepalive",
    "apply_load_balancer",
    "apply_outlier_detection",
    "apply_retry_budget",
    "consistent_hash",
    "for_port",
    "for_subset",
    "port_hash",
    "set_default_circuit_breakers",
    "upstream_protocol",
]


def for_port(policy: TrafficPolicy | None, port: int) -> TrafficPolicy | None:
    """Istio's port-level override: a matching portLevelSettings entry replaces the four
    fields wholesale (unset ones fall back to defaults, not to the top-level values)."""
    if policy is None or not policy.port_level_settings:
        return policy
    return _port_level(replace(policy, port_level_settings=()), policy.port_level_settings, port)


def for_subset(base: TrafficPolicy | None, subset_policy: TrafficPolicy | None, port: int) -> TrafficPolicy | None:
    """A subset's policy overlays the destination's field by field, then its own port level."""
    if subset_policy is None:
        return base
    merged = base or TrafficPolicy()
    merged = replace(
        merged,
        connection_pool=subset_policy.connection_pool or merged.connection_pool,
        outlier_detection=subset_policy.outlier_detection or merged.outlier_detection,
        load_balancer=subset_policy.load_balancer or merged.load_balancer,
        tls=subset_policy.tls or merged.tls,
        tunnel=subset_policy.tunnel or merged.tunnel,
        proxy_protocol=subset_policy.proxy_protocol or merged.proxy_protocol,
        retry_budget=subset_policy.retry_budget or merged.retry_budget,
    )
    return _port_level(merged, subset_policy.port_level_settings, port)


def _port_level(policy: TrafficPolicy, entries: tuple[PortTrafficPolicy, ...], port: int) -> TrafficPolicy:
    for entry in entries:
        if entry.port.number == port:
            return replace(policy, connection_pool=entry.connection_pool, load_balancer=entry.load_balancer,
                           outlier_detection=entry.outlier_detection, tls=entry.tls)
    return policy


def port_hash(policy: TrafficPolicy | None, number: int | None) -> ConsistentHashLB | None:
    """The consistent hash a port-level setting of `policy` gives port `number`, if any."""
    if policy is None or not number:
        return None
    for entry in policy.port_level_settings:
        if entry.port.number == number:
            return entry.load_balancer.consistent_hash if entry.load_balancer else None
    return None


def consistent_hash(policy: TrafficPolicy | None) -> ConsistentHashLB | None:
    return policy.load_balancer.consistent_hash if policy and policy.load_balancer else None


class HttpOptions:
    """The cluster's `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`, built lazily:
    Istio adds the extension only when something needs it."""

    def __init__(self) -> None:
        self.options: http_protocol_options_pb2.HttpProtocolOptions | None = None

    def get(self) -> http_protocol_options_pb2.HttpProtocolOptions:
        if self.options is None:
            self.options = http_protocol_options_pb2.HttpProtocolOptions()
        return self.options

    def set_h2(self) -> None:
        self.get().explicit_http_config.http2_protocol_options.SetInParent()

    def set_use_downstream(self) -> None:
        """Mirror the client's protocol, keeping the HTTP/1 options an explicit HTTP/1 config
        held (Istio's setUseDownstreamProtocol: a preserved header case survives sniffing)."""
        options = self.get()
        kept = protocol_pb2.Http1ProtocolOptions()
        if options.explicit_http_config.HasField("http_protocol_options"):
            kept.CopyFrom(options.explicit_http_config.http_protocol_options)
        downstream = options.use_downstream_protocol_config
        downstream.http_protocol_options.CopyFrom(kept)
        downstream.http2_protocol_options.SetInParent()

    @property
    def is_h2(self) -> bool:
        return (
            self.options is not None
            and self.options.HasField("explicit_http_config")
            and self.options.explicit_http_config.HasField("http2_protocol_options")
        )

    def finish(self, cluster: cluster_pb2.Cluster) -> None:
        from meshctl.generate.protobuf import typed

        if self.options is None:
            return
        if self.options.WhichOneof("upstream_protocol_options") is None:
            self.options.explicit_http_config.http_protocol_options.SetInParent()
        cluster.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].CopyFrom(
            typed(self.options)
        )


def set_default_circuit_breakers(cluster: cluster_pb2.Cluster) -> cluster_pb2.CircuitBreakers.Thresholds:
    threshold = cluster.circuit_breakers.thresholds.add()
    threshold.max_connections.value = MAX_UINT32
    threshold.max_pending_requests.value = MAX_UINT32
    threshold.max_requests.value = MAX_UINT32
    threshold.max_retries.value = MAX_UINT32
    return threshold


def upstream_protocol(options: HttpOptions, port_protocol: str, sidecar: bool, preserve_case: bool) -> None:
    """HTTP/2 for the h2 family. Otherwise, with `preserveHttp1HeaderCase`, HTTP/1 that keeps
    header names' case on HTTP and sniffed (unnamed) ports; and a sidecar mirrors the client's
    protocol on sniffed ports. Istio's setUpstreamProtocol, for inbound and outbound clusters
    alike, before any DestinationRule (whose h2 upgrade then replaces the HTTP/1 options)."""
    if port_protocol in protocols.H2_FAMILY:
        options.set_h2()
        return
    if preserve_case and (port_protocol in protocols.HTTP_FAMILY or port_protocol == protocols.UNSUPPORTED):
        preserve_case_options(options.get().explicit_http_config.http_protocol_options)
    if sidecar and port_protocol == protocols.UNSUPPORTED:
        options.set_use_downstream()


def apply_connection_pool(cluster: cluster_pb2.Cluster, options: HttpOptions, pool: ConnectionPoolSettings | None,
                          connect_timeout: int, mesh_keepalive: TcpKeepalive | None = None,
                          retry_budget: RetryBudget | None = None) -> None:
    """Circuit breakers, timeouts and keepalives (zero means unset, as in Istio): the mesh's
    connectTimeout (nanoseconds) and tcpKeepalive unless the pool says otherwise (keepalive
    field by field); and the policy's retry budget, on the one threshold."""
    http = pool.http if pool else None
    tcp = pool.tcp if pool else None
    set_duration(cluster.connect_timeout, connect_timeout)
    threshold = set_default_circuit_breakers(cluster)
    if retry_budget is not None:
        apply_retry_budget(threshold, retry_budget)
    if http is not None:
        if http.http2_max_requests:
            threshold.max_requests.value = http.http2_max_requests
        if http.http1_max_pending_requests:
            threshold.max_pending_requests.value = http.http1_max_pending_requests
        if http.max_retries:
            threshold.max_retries.value = http.max_retries
    if tcp is not None:
        if tcp.connect_timeout:
            set_duration(cluster.connect_timeout, tcp.connect_timeout)
        if tcp.max_connections:
            threshold.max_connections.value = tcp.max_connections
    apply_keepalive(cluster, mesh_keepalive, tcp.tcp_keepalive if tcp else None)
    idle = (http.idle_timeout if http else None) or (tcp.idle_timeout if tcp else None)
    per_connection = (http.max_requests_per_connection if http else None) or 0
    streams = (http.max_concurrent_streams if http else None) or 0
    lifetime = tcp.max_connection_duration if tcp else None
    if idle or per_connection > 0 or lifetime or streams > 0:
        common = options.get().common_http_protocol_options
        common.SetInParent()
        if idle:
            set_duration(common.idle_timeout, idle)
        if per_connection > 0:
            common.max_requests_per_connection.value = per_connection
        if lifetime:
            set_duration(common.max_connection_duration, lifetime)
    if http is not None and http.use_client_protocol:
        options.set_use_downstream()


def apply_retry_budget(threshold: cluster_pb2.CircuitBreakers.Thresholds, budget: RetryBudget) -> None:
    """A DestinationRule's `retryBudget`, Istio's defaults where it says nothing: a percent of
    0.2 (Envoy reads the value as a percentage, so 0.2 %, not the 20 % Istio's comment means,
    but that is what istiod sends) and at least 3 retries at once. `budgetInterval` is not
    sent: istiod leaves it out."""
    target = threshold.retry_budget
    target.budget_percent.value = 0.2 if budget.percent is None else budget.percent
    target.min_retry_concurrency.value = budget.min_retry_concurrency or 3


def apply_keepalive(cluster: cluster_pb2.Cluster, mesh: TcpKeepalive | None, own: TcpKeepalive | None) -> None:
    """SO_KEEPALIVE on upstream connections: the mesh's tcpKeepalive, each field overridden by
    the DestinationRule's (Istio's applyTCPKeepalive); times in whole seconds."""
    if mesh is None and own is None:
        return
    target = cluster.upstream_connection_options.tcp_keepalive
    target.SetInParent()
    for source in (mesh, own):
        if source is None:
            continue
        if source.probes:
            target.keepalive_probes.value = source.probes
        if source.time:
            target.keepalive_time.value = max(1, source.time // 1_000_000_000)
        if source.interval:
            target.keepalive_interval.value = max(1, source.interval // 1_000_000_000)


def apply_h2_upgrade(options: HttpOptions, pool: ConnectionPoolSettings | None, port_protocol: str,
                     mesh_upgrade: bool) -> None:
    policy = pool.http.h2_upgrade_policy if pool and pool.http else ""
    if policy == "UPGRADE":
        options.set_h2()
    elif policy == "DO_NOT_UPGRADE":
        return
    elif mesh_upgrade and port_protocol in protocols.HTTP_FAMILY:
        options.set_h2()


def apply_h2_streams(options: HttpOptions, pool: ConnectionPoolSettings | None) -> None:
    streams = (pool.http.max_concurrent_streams if pool and pool.http else None) or 0
    if streams > 0 and options.is_h2:
        options.get().explicit_http_config.http2_protocol_options.max_concurrent_streams.value = streams


def apply_outlier_detection(cluster: cluster_pb2.Cluster, outlier: OutlierDetection | None) -> None:
    if outlier is None:
        return
    out = cluster.outlier_detection
    out.enforcing_success_rate.value = 0
    errors = outlier.consecutive_5xx_errors if outlier.consecutive_5xx_errors is not None else outlier.consecutive_errors
    if errors is not None:
        out.consecutive_5xx.value = errors
        out.enforcing_consecutive_5xx.value = 100 if errors > 0 else 0
    gateway = outlier.consecutive_gateway_errors
    if gateway is not None:
        out.consecutive_gateway_failure.value = gateway
        out.enforcing_consecutive_gateway_failure.value = 100 if gateway > 0 else 0
    if outlier.interval:
        set_duration(out.interval, outlier.interval)
    if outlier.base_ejection_time:
        set_duration(out.base_ejection_time, outlier.base_ejection_time)
    if outlier.max_ejection_percent:
        out.max_ejection_percent.value = outlier.max_ejection_percent
    if outlier.split_external_local_origin_errors:
        out.split_external_local_origin_errors = True
        local = outlier.consecutive_local_origin_failures or 0
        if local > 0:
            out.consecutive_local_origin_failure.value = local
            out.enforcing_consecutive_local_origin_failure.value = 100
        out.enforcing_local_origin_success_rate.value = 0
    cluster.common_lb_config.healthy_panic_threshold.value = float(outlier.min_health_percent or 0)


def apply_load_balancer(cluster: cluster_pb2.Cluster, lb: LoadBalancerSettings | None,
                        mesh_locality: LocalityLoadBalancerSetting | None = None) -> None:
    """The LB policy and its settings; locality weighting from the DestinationRule's
    localityLbSetting, else the mesh's (Istio's GetEffectiveLbSetting: they never merge)."""
    lb = lb or LoadBalancerSettings()
    if cluster.type == cluster_pb2.Cluster.ORIGINAL_DST:
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
        return
    if lb.simple == "RANDOM":
        cluster.lb_policy = cluster_pb2.Cluster.RANDOM
    elif lb.simple == "PASSTHROUGH":
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
        cluster.type = cluster_pb2.Cluster.ORIGINAL_DST
        cluster.ClearField("load_assignment")
    elif lb.simple == "ROUND_ROBIN":
        cluster.lb_policy = cluster_pb2.Cluster.ROUND_ROBIN
        _slow_start(cluster.round_robin_lb_config, lb)
    else:
        cluster.lb_policy = cluster_pb2.Cluster.LEAST_REQUEST
        _slow_start(cluster.least_request_lb_config, lb)
    consistent = lb.consistent_hash
    if consistent is not None:
        if consistent.maglev is not None:
            cluster.lb_policy = cluster_pb2.Cluster.MAGLEV
            if consistent.maglev.table_size:
                cluster.maglev_lb_config.table_size.value = consistent.maglev.table_size
        elif consistent.ring_hash is not None:
            cluster.lb_policy = cluster_pb2.Cluster.RING_HASH
            if consistent.ring_hash.minimum_ring_size:
                cluster.ring_hash_lb_config.minimum_ring_size.value = consistent.ring_hash.minimum_ring_size
        else:
            cluster.lb_policy = cluster_pb2.Cluster.RING_HASH
            cluster.ring_hash_lb_config.minimum_ring_size.value = consistent.minimum_ring_size or 1024
    locality = lb.locality_lb_setting or mesh_locality
    if locality is None or locality.enabled is False:
        return
    failover = bool(locality.failover or locality.failover_priority) and cluster.HasField("outlier_detection")
    if locality.distribute or failover:
        cluster.common_lb_config.locality_weighted_lb_config.SetInParent()


def _slow_start(config: Any, lb: LoadBalancerSettings) -> None:
    warmup = lb.warmup
    window = (warmup.duration if warmup else None) or lb.warmup_duration_secs
    if not window:
        return
    slow = config.slow_start_config
    set_duration(slow.slow_start_window, window)
    if warmup is not None:
        slow.aggression.default_value = warmup.aggression if warmup.aggression is not None else 1.0
        slow.aggression.runtime_key = "("
        slow.min_weight_percent.value = warmup.minimum_percent if warmup.minimum_percent is not None else 10.0
