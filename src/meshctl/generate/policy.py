"""DestinationRule traffic policy: which policy applies to a port and subset, and how it maps to a Cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from meshctl.generate.common import MAX_UINT32, set_duration
from meshctl import protocols

Policy = Mapping[str, Any]
_PORT_FIELDS = ("connectionPool", "loadBalancer", "outlierDetection", "tls")
_SUBSET_FIELDS = ("connectionPool", "outlierDetection", "loadBalancer", "tls", "tunnel", "proxyProtocol", "retryBudget")


def for_port(policy: Policy | None, port: int) -> dict[str, Any] | None:
    """Istio's port-level override: a matching portLevelSettings entry replaces the four
    fields wholesale (unset ones fall back to defaults, not to the top-level values)."""
    if not policy:
        return None
    resolved = {key: value for key, value in policy.items() if key != "portLevelSettings"}
    for entry in policy.get("portLevelSettings") or []:
        if (entry.get("port") or {}).get("number") == port:
            for key in _PORT_FIELDS:
                resolved[key] = entry.get(key)
            break
    return resolved


def for_subset(base: Policy | None, subset_policy: Policy | None, port: int) -> Policy | None:
    """A subset's policy overlays the destination's field by field, then its own port level."""
    if not subset_policy:
        return base
    merged = dict(base or {})
    for key in _SUBSET_FIELDS:
        if subset_policy.get(key) is not None:
            merged[key] = subset_policy[key]
    for entry in subset_policy.get("portLevelSettings") or []:
        if (entry.get("port") or {}).get("number") == port:
            for key in _PORT_FIELDS:
                merged[key] = entry.get(key)
            break
    return merged


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
        config = self.get().use_downstream_protocol_config
        config.http_protocol_options.SetInParent()
        config.http2_protocol_options.SetInParent()

    @property
    def is_h2(self) -> bool:
        return (
            self.options is not None
            and self.options.HasField("explicit_http_config")
            and self.options.explicit_http_config.HasField("http2_protocol_options")
        )

    def finish(self, cluster: cluster_pb2.Cluster) -> None:
        from meshctl.generate.common import typed

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


def upstream_protocol(options: HttpOptions, port_protocol: str, sidecar: bool) -> None:
    """HTTP/2 for the h2 family; mirror the client's protocol on sniffed (unnamed) ports."""
    if port_protocol in protocols.H2_FAMILY:
        options.set_h2()
    elif sidecar and port_protocol == protocols.UNSUPPORTED:
        options.set_use_downstream()


def apply_connection_pool(cluster: cluster_pb2.Cluster, options: HttpOptions, pool: Policy | None,
                          connect_timeout_seconds: int) -> None:
    """Circuit breakers, timeouts and keepalives (zero means unset, as in Istio)."""
    pool = pool or {}
    http = pool.get("http") or {}
    tcp = pool.get("tcp") or {}
    cluster.connect_timeout.seconds = connect_timeout_seconds
    threshold = set_default_circuit_breakers(cluster)
    if http.get("http2MaxRequests", 0) > 0:
        threshold.max_requests.value = http["http2MaxRequests"]
    if http.get("http1MaxPendingRequests", 0) > 0:
        threshold.max_pending_requests.value = http["http1MaxPendingRequests"]
    if http.get("maxRetries", 0) > 0:
        threshold.max_retries.value = http["maxRetries"]
    if tcp.get("connectTimeout"):
        set_duration(cluster.connect_timeout, tcp["connectTimeout"])
    if tcp.get("maxConnections", 0) > 0:
        threshold.max_connections.value = tcp["maxConnections"]
    keepalive = tcp.get("tcpKeepalive")
    if keepalive is not None:
        target = cluster.upstream_connection_options.tcp_keepalive
        target.SetInParent()
        if keepalive.get("probes"):
            target.keepalive_probes.value = keepalive["probes"]
        if keepalive.get("time"):
            target.keepalive_time.value = max(1, _seconds(keepalive["time"]))
        if keepalive.get("interval"):
            target.keepalive_interval.value = max(1, _seconds(keepalive["interval"]))
    idle = http.get("idleTimeout") or tcp.get("idleTimeout")
    per_connection = http.get("maxRequestsPerConnection", 0)
    streams = http.get("maxConcurrentStreams", 0)
    lifetime = tcp.get("maxConnectionDuration")
    if idle or per_connection > 0 or lifetime or streams > 0:
        common = options.get().common_http_protocol_options
        common.SetInParent()
        if idle:
            set_duration(common.idle_timeout, idle)
        if per_connection > 0:
            common.max_requests_per_connection.value = per_connection
        if lifetime:
            set_duration(common.max_connection_duration, lifetime)
    if http.get("useClientProtocol"):
        options.set_use_downstream()


def _seconds(text: str) -> int:
    from meshctl.config.values import parse_duration

    return (parse_duration(text) or 0) // 1_000_000_000


def apply_h2_upgrade(options: HttpOptions, pool: Policy | None, port_protocol: str, mesh_upgrade: bool) -> None:
    policy = ((pool or {}).get("http") or {}).get("h2UpgradePolicy")
    if policy == "UPGRADE":
        options.set_h2()
    elif policy == "DO_NOT_UPGRADE":
        return
    elif mesh_upgrade and port_protocol in protocols.HTTP_FAMILY:
        options.set_h2()


def apply_h2_streams(options: HttpOptions, pool: Policy | None) -> None:
    streams = (((pool or {}).get("http") or {}).get("maxConcurrentStreams")) or 0
    if streams > 0 and options.is_h2:
        options.get().explicit_http_config.http2_protocol_options.max_concurrent_streams.value = streams


def apply_outlier_detection(cluster: cluster_pb2.Cluster, outlier: Policy | None) -> None:
    if outlier is None:
        return
    out = cluster.outlier_detection
    out.enforcing_success_rate.value = 0
    errors = outlier.get("consecutive5xxErrors", outlier.get("consecutiveErrors"))
    if errors is not None:
        out.consecutive_5xx.value = errors
        out.enforcing_consecutive_5xx.value = 100 if errors > 0 else 0
    gateway = outlier.get("consecutiveGatewayErrors")
    if gateway is not None:
        out.consecutive_gateway_failure.value = gateway
        out.enforcing_consecutive_gateway_failure.value = 100 if gateway > 0 else 0
    if outlier.get("interval"):
        set_duration(out.interval, outlier["interval"])
    if outlier.get("baseEjectionTime"):
        set_duration(out.base_ejection_time, outlier["baseEjectionTime"])
    if outlier.get("maxEjectionPercent", 0) > 0:
        out.max_ejection_percent.value = outlier["maxEjectionPercent"]
    if outlier.get("splitExternalLocalOriginErrors"):
        out.split_external_local_origin_errors = True
        local = outlier.get("consecutiveLocalOriginFailures") or 0
        if local > 0:
            out.consecutive_local_origin_failure.value = local
            out.enforcing_consecutive_local_origin_failure.value = 100
        out.enforcing_local_origin_success_rate.value = 0
    cluster.common_lb_config.healthy_panic_threshold.value = float(outlier.get("minHealthPercent") or 0)


def apply_load_balancer(cluster: cluster_pb2.Cluster, lb: Policy | None) -> None:
    lb = lb or {}
    if cluster.type == cluster_pb2.Cluster.ORIGINAL_DST:
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
        return
    simple = lb.get("simple")
    if simple == "RANDOM":
        cluster.lb_policy = cluster_pb2.Cluster.RANDOM
    elif simple == "PASSTHROUGH":
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
        cluster.type = cluster_pb2.Cluster.ORIGINAL_DST
        cluster.ClearField("load_assignment")
    elif simple == "ROUND_ROBIN":
        cluster.lb_policy = cluster_pb2.Cluster.ROUND_ROBIN
        _slow_start(cluster.round_robin_lb_config, lb)
    else:
        cluster.lb_policy = cluster_pb2.Cluster.LEAST_REQUEST
        _slow_start(cluster.least_request_lb_config, lb)
    consistent = lb.get("consistentHash")
    if consistent:
        if consistent.get("maglev") is not None:
            cluster.lb_policy = cluster_pb2.Cluster.MAGLEV
            size = consistent["maglev"].get("tableSize") or 0
            if size:
                cluster.maglev_lb_config.table_size.value = size
        elif consistent.get("ringHash") is not None:
            cluster.lb_policy = cluster_pb2.Cluster.RING_HASH
            size = consistent["ringHash"].get("minimumRingSize") or 0
            if size:
                cluster.ring_hash_lb_config.minimum_ring_size.value = size
        else:
            cluster.lb_policy = cluster_pb2.Cluster.RING_HASH
            cluster.ring_hash_lb_config.minimum_ring_size.value = consistent.get("minimumRingSize") or 1024
    if lb.get("localityLbSetting", {}).get("distribute"):
        cluster.common_lb_config.locality_weighted_lb_config.SetInParent()


def _slow_start(config: Any, lb: Policy) -> None:
    warmup = lb.get("warmup")
    window = (warmup or {}).get("duration") or lb.get("warmupDurationSecs")
    if not window:
        return
    slow = config.slow_start_config
    set_duration(slow.slow_start_window, window)
    if warmup:
        slow.aggression.default_value = float(warmup.get("aggression", 1.0))
        slow.aggression.runtime_key = "("
        slow.min_weight_percent.value = float(warmup.get("minimumPercent", 10))
