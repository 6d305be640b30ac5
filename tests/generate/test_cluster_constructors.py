"""DestinationRule traffic policy → Cluster, table by table: a typed view in, the whole message out.

Each constructor is applied to a fresh Cluster and the result compared in full with one built
from xds-protos classes, so a field set by mistake fails as surely as one left out.
"""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import address_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.http.header_formatters.preserve_case.v3 import preserve_case_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message
from protoassert import assert_proto_equal

from meshctl import protocols
from meshctl.config.kinds.networking.destination_rule import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    ConsistentHashLB,
    CookieAttribute,
    Distribute,
    HTTPCookie,
    HTTPSettings,
    LoadBalancerSettings,
    LocalityLoadBalancerSetting,
    MagLev,
    OutlierDetection,
    PolicyPort,
    PortTrafficPolicy,
    RetryBudget,
    RingHash,
    TcpKeepalive,
    TCPSettings,
    TrafficPolicy,
    WarmupConfiguration,
)
from meshctl.generate import policy
from meshctl.generate.routes import hash_policy

S = 1_000_000_000
MS = 1_000_000
MAX = 4294967295
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def duration(nanos: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=nanos // S, nanos=nanos % S)


def u32(value: int) -> wrappers_pb2.UInt32Value:
    return wrappers_pb2.UInt32Value(value=value)


def packed(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message, deterministic=True)
    return out


def thresholds(connections: int = MAX, pending: int = MAX, requests: int = MAX,
               retries: int = MAX) -> circuit_breaker_pb2.CircuitBreakers:
    return circuit_breaker_pb2.CircuitBreakers(thresholds=[circuit_breaker_pb2.CircuitBreakers.Thresholds(
        max_connections=u32(connections), max_pending_requests=u32(pending), max_requests=u32(requests),
        max_retries=u32(retries))])


def with_options(cluster: cluster_pb2.Cluster, options: hpo.HttpProtocolOptions) -> cluster_pb2.Cluster:
    cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(packed(options))
    return cluster


HTTP1: dict[str, object] = {"explicit_http_config": {"http_protocol_options": {}}}
H2: dict[str, object] = {"explicit_http_config": {"http2_protocol_options": {}}}


# --- connection pool ------------------------------------------------------------------------------

def pooled(pool: ConnectionPoolSettings | None, port_protocol: str = protocols.HTTP,
           mesh_upgrade: bool = False, preserve_case: bool = False) -> cluster_pb2.Cluster:
    """What clusters do with a pool: circuit breakers and timeouts, then HTTP/2 choices."""
    cluster = cluster_pb2.Cluster()
    options = policy.HttpOptions()
    policy.upstream_protocol(options, port_protocol, sidecar=True, preserve_case=preserve_case)
    policy.apply_connection_pool(cluster, options, pool, 10 * 10**9)
    policy.apply_h2_upgrade(options, pool, port_protocol, mesh_upgrade)
    policy.apply_h2_streams(options, pool)
    options.finish(cluster)
    return cluster


@pytest.mark.parametrize(("pool", "port_protocol", "mesh_upgrade", "expected"), [
    pytest.param(None, protocols.HTTP, False, cluster_pb2.Cluster(connect_timeout=duration(10 * S),
                                                                  circuit_breakers=thresholds()), id="none"),
    pytest.param(ConnectionPoolSettings(
        tcp=TCPSettings(max_connections=7, connect_timeout=250 * MS, max_connection_duration=600 * S,
                        tcp_keepalive=TcpKeepalive(probes=2, time=30 * S, interval=500 * MS), idle_timeout=5 * S),
        http=HTTPSettings(http1_max_pending_requests=3, http2_max_requests=11, max_retries=2,
                          max_requests_per_connection=1, idle_timeout=45 * S)),
        protocols.HTTP, False,
        with_options(cluster_pb2.Cluster(
            connect_timeout=duration(250 * MS), circuit_breakers=thresholds(7, 3, 11, 2),
            upstream_connection_options=cluster_pb2.UpstreamConnectionOptions(tcp_keepalive=address_pb2.TcpKeepalive(
                keepalive_probes=u32(2), keepalive_time=u32(30), keepalive_interval=u32(1)))),
            hpo.HttpProtocolOptions(common_http_protocol_options=protocol_pb2.HttpProtocolOptions(
                idle_timeout=duration(45 * S), max_requests_per_connection=u32(1),
                max_connection_duration=duration(600 * S)), **HTTP1)),
        id="every field: HTTP idle timeout wins, keepalive whole seconds, at least 1"),
    pytest.param(ConnectionPoolSettings(tcp=TCPSettings(idle_timeout=5 * S, tcp_keepalive=TcpKeepalive())),
                 protocols.TCP, False,
                 with_options(cluster_pb2.Cluster(
                     connect_timeout=duration(10 * S), circuit_breakers=thresholds(),
                     upstream_connection_options=cluster_pb2.UpstreamConnectionOptions(
                         tcp_keepalive=address_pb2.TcpKeepalive())),
                     hpo.HttpProtocolOptions(common_http_protocol_options=protocol_pb2.HttpProtocolOptions(
                         idle_timeout=duration(5 * S)), **HTTP1)),
                 id="TCP idle timeout, empty keepalive"),
    pytest.param(ConnectionPoolSettings(http=HTTPSettings(use_client_protocol=True)), protocols.HTTP, False,
                 with_options(cluster_pb2.Cluster(connect_timeout=duration(10 * S), circuit_breakers=thresholds()),
                              hpo.HttpProtocolOptions(use_downstream_protocol_config={
                                  "http_protocol_options": {}, "http2_protocol_options": {}})),
                 id="use the client's protocol"),
    pytest.param(ConnectionPoolSettings(http=HTTPSettings(h2_upgrade_policy="UPGRADE", max_concurrent_streams=50)),
                 protocols.HTTP, False,
                 with_options(cluster_pb2.Cluster(connect_timeout=duration(10 * S), circuit_breakers=thresholds()),
                              hpo.HttpProtocolOptions(
                                  common_http_protocol_options=protocol_pb2.HttpProtocolOptions(),
                                  explicit_http_config={"http2_protocol_options": {
                                      "max_concurrent_streams": u32(50)}})),
                 id="upgrade to HTTP/2 with a stream limit"),
    pytest.param(None, protocols.HTTP, True,
                 with_options(cluster_pb2.Cluster(connect_timeout=duration(10 * S), circuit_breakers=thresholds()),
                              hpo.HttpProtocolOptions(**H2)), id="mesh-wide upgrade"),
    pytest.param(ConnectionPoolSettings(http=HTTPSettings(h2_upgrade_policy="DO_NOT_UPGRADE")), protocols.HTTP, True,
                 cluster_pb2.Cluster(connect_timeout=duration(10 * S), circuit_breakers=thresholds()),
                 id="no upgrade despite the mesh"),
    pytest.param(None, protocols.GRPC, False,
                 with_options(cluster_pb2.Cluster(connect_timeout=duration(10 * S), circuit_breakers=thresholds()),
                              hpo.HttpProtocolOptions(**H2)), id="gRPC port: HTTP/2"),
    pytest.param(None, protocols.UNSUPPORTED, False,
                 with_options(cluster_pb2.Cluster(connect_timeout=duration(10 * S), circuit_breakers=thresholds()),
                              hpo.HttpProtocolOptions(use_downstream_protocol_config={
                                  "http_protocol_options": {}, "http2_protocol_options": {}})),
                 id="sniffed port: the client's protocol"),
])
def test_connection_pool(pool: ConnectionPoolSettings | None, port_protocol: str, mesh_upgrade: bool,
                         expected: cluster_pb2.Cluster) -> None:
    assert_proto_equal(pooled(pool, port_protocol, mesh_upgrade), expected)


@pytest.mark.parametrize(("budget", "expected"), [
    pytest.param(RetryBudget(), {"budget_percent": {"value": 0.2}, "min_retry_concurrency": u32(3)},
                 id="empty: Istio's 0.2 and 3"),
    pytest.param(RetryBudget(percent=25.0, min_retry_concurrency=7, budget_interval=10 * S),
                 {"budget_percent": {"value": 25.0}, "min_retry_concurrency": u32(7)},
                 id="every field: no interval sent"),
    pytest.param(RetryBudget(percent=0.0, min_retry_concurrency=0), {"budget_percent": {}, "min_retry_concurrency": u32(3)},
                 id="percent 0 is set, concurrency 0 is not"),
])
def test_retry_budget(budget: RetryBudget, expected: dict[str, object]) -> None:
    """A DestinationRule's retryBudget on the one circuit-breaker threshold, beside the pool's
    limits (Istio's applyRetryBudget)."""
    cluster = cluster_pb2.Cluster()
    pool = ConnectionPoolSettings(http=HTTPSettings(max_retries=10))
    policy.apply_connection_pool(cluster, policy.HttpOptions(), pool, 10 * S, retry_budget=budget)
    limits = thresholds(retries=10)
    limits.thresholds[0].retry_budget.CopyFrom(circuit_breaker_pb2.CircuitBreakers.Thresholds.RetryBudget(**expected))
    assert_proto_equal(cluster, cluster_pb2.Cluster(connect_timeout=duration(10 * S), circuit_breakers=limits))


PRESERVED: dict[str, object] = {"header_key_format": {"stateful_formatter": {
    "name": "preserve_case", "typed_config": packed(preserve_case_pb2.PreserveCaseFormatterConfig())}}}


@pytest.mark.parametrize(("pool", "port_protocol", "options"), [
    pytest.param(None, protocols.HTTP, hpo.HttpProtocolOptions(explicit_http_config={"http_protocol_options": PRESERVED}),
                 id="HTTP port: explicit HTTP/1 keeping case"),
    pytest.param(None, protocols.UNSUPPORTED, hpo.HttpProtocolOptions(use_downstream_protocol_config={
        "http_protocol_options": PRESERVED, "http2_protocol_options": {}}),
                 id="sniffed port: the client's protocol, HTTP/1 keeping case"),
    pytest.param(ConnectionPoolSettings(http=HTTPSettings(use_client_protocol=True)), protocols.HTTP,
                 hpo.HttpProtocolOptions(use_downstream_protocol_config={
                     "http_protocol_options": PRESERVED, "http2_protocol_options": {}}),
                 id="useClientProtocol inherits the explicit HTTP/1 options"),
    pytest.param(ConnectionPoolSettings(http=HTTPSettings(h2_upgrade_policy="UPGRADE")), protocols.HTTP,
                 hpo.HttpProtocolOptions(**H2), id="an h2 upgrade replaces them"),
    pytest.param(None, protocols.GRPC, hpo.HttpProtocolOptions(**H2), id="gRPC port: HTTP/2 alone"),
    pytest.param(None, protocols.TCP, None, id="TCP port: nothing"),
])
def test_preserved_header_case(pool: ConnectionPoolSettings | None, port_protocol: str,
                               options: hpo.HttpProtocolOptions | None) -> None:
    """`preserveHttp1HeaderCase` upstream: set before the DestinationRule's policy, which may
    replace it (Istio's buildCluster runs setUpstreamProtocol first)."""
    plain = cluster_pb2.Cluster(connect_timeout=duration(10 * S), circuit_breakers=thresholds())
    expected = plain if options is None else with_options(plain, options)
    assert_proto_equal(pooled(pool, port_protocol, preserve_case=True), expected)


# --- outlier detection ----------------------------------------------------------------------------

@pytest.mark.parametrize(("outlier", "expected"), [
    pytest.param(None, cluster_pb2.Cluster(), id="none"),
    pytest.param(OutlierDetection(), cluster_pb2.Cluster(
        outlier_detection=outlier_detection_pb2.OutlierDetection(enforcing_success_rate=u32(0)),
        common_lb_config={"healthy_panic_threshold": percent_pb2.Percent(value=0)}), id="empty"),
    pytest.param(OutlierDetection(consecutive_5xx_errors=5, consecutive_gateway_errors=0, interval=2 * S,
                                  base_ejection_time=15 * S, max_ejection_percent=30, min_health_percent=10,
                                  split_external_local_origin_errors=True, consecutive_local_origin_failures=4),
                 cluster_pb2.Cluster(
                     outlier_detection=outlier_detection_pb2.OutlierDetection(
                         enforcing_success_rate=u32(0), consecutive_5xx=u32(5), enforcing_consecutive_5xx=u32(100),
                         consecutive_gateway_failure=u32(0), enforcing_consecutive_gateway_failure=u32(0),
                         interval=duration(2 * S), base_ejection_time=duration(15 * S), max_ejection_percent=u32(30),
                         split_external_local_origin_errors=True, consecutive_local_origin_failure=u32(4),
                         enforcing_consecutive_local_origin_failure=u32(100),
                         enforcing_local_origin_success_rate=u32(0)),
                     common_lb_config={"healthy_panic_threshold": percent_pb2.Percent(value=10)}),
                 id="every field"),
    pytest.param(OutlierDetection(consecutive_errors=7), cluster_pb2.Cluster(
        outlier_detection=outlier_detection_pb2.OutlierDetection(
            enforcing_success_rate=u32(0), consecutive_5xx=u32(7), enforcing_consecutive_5xx=u32(100)),
        common_lb_config={"healthy_panic_threshold": percent_pb2.Percent(value=0)}),
        id="deprecated consecutiveErrors"),
])
def test_outlier_detection(outlier: OutlierDetection | None, expected: cluster_pb2.Cluster) -> None:
    cluster = cluster_pb2.Cluster()
    policy.apply_outlier_detection(cluster, outlier)
    assert_proto_equal(cluster, expected)


# --- load balancer --------------------------------------------------------------------------------

EDS = cluster_pb2.Cluster.EDS
ASSIGNMENT = endpoint_pb2.ClusterLoadAssignment(cluster_name="x")


def balanced(lb: LoadBalancerSettings | None, discovery: int = EDS) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(type=discovery, load_assignment=ASSIGNMENT)
    policy.apply_load_balancer(cluster, lb)
    return cluster


def lb_cluster(lb_policy: int, **fields: object) -> cluster_pb2.Cluster:
    defaults: dict[str, object] = {"type": EDS, "load_assignment": ASSIGNMENT}
    return cluster_pb2.Cluster(lb_policy=lb_policy, **(defaults | fields))


def slow_start(window: int, aggression: float | None = None, minimum: float | None = None) -> dict[str, object]:
    config: dict[str, object] = {"slow_start_window": duration(window)}
    if aggression is not None:
        config["aggression"] = {"default_value": aggression, "runtime_key": "("}
    if minimum is not None:
        config["min_weight_percent"] = percent_pb2.Percent(value=minimum)
    return {"slow_start_config": config}


HEADER_HASH = ConsistentHashLB(http_header_name="x-user")


@pytest.mark.parametrize(("lb", "discovery", "expected"), [
    pytest.param(None, EDS, lb_cluster(cluster_pb2.Cluster.LEAST_REQUEST), id="none: least request"),
    pytest.param(LoadBalancerSettings(simple="RANDOM"), EDS, lb_cluster(cluster_pb2.Cluster.RANDOM), id="random"),
    pytest.param(LoadBalancerSettings(simple="ROUND_ROBIN", warmup=WarmupConfiguration(
        duration=60 * S, minimum_percent=5, aggression=2.0)), EDS,
        lb_cluster(cluster_pb2.Cluster.ROUND_ROBIN, round_robin_lb_config=slow_start(60 * S, 2.0, 5.0)),
        id="round robin with warmup"),
    pytest.param(LoadBalancerSettings(simple="LEAST_REQUEST", warmup=WarmupConfiguration(duration=30 * S)), EDS,
                 lb_cluster(cluster_pb2.Cluster.LEAST_REQUEST, least_request_lb_config=slow_start(30 * S, 1.0, 10.0)),
                 id="warmup defaults"),
    pytest.param(LoadBalancerSettings(warmup_duration_secs=45 * S), EDS,
                 lb_cluster(cluster_pb2.Cluster.LEAST_REQUEST, least_request_lb_config=slow_start(45 * S)),
                 id="deprecated warmupDurationSecs"),
    pytest.param(LoadBalancerSettings(simple="PASSTHROUGH"), EDS,
                 cluster_pb2.Cluster(type=cluster_pb2.Cluster.ORIGINAL_DST,
                                     lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED),
                 id="passthrough: original destination"),
    pytest.param(LoadBalancerSettings(simple="ROUND_ROBIN"), cluster_pb2.Cluster.ORIGINAL_DST,
                 cluster_pb2.Cluster(type=cluster_pb2.Cluster.ORIGINAL_DST, load_assignment=ASSIGNMENT,
                                     lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED),
                 id="original destination cluster keeps its own"),
    pytest.param(LoadBalancerSettings(consistent_hash=HEADER_HASH), EDS,
                 lb_cluster(cluster_pb2.Cluster.RING_HASH, ring_hash_lb_config={"minimum_ring_size": {"value": 1024}}),
                 id="consistent hash: ring of 1024"),
    pytest.param(LoadBalancerSettings(consistent_hash=ConsistentHashLB(use_source_ip=True, minimum_ring_size=2048)),
                 EDS, lb_cluster(cluster_pb2.Cluster.RING_HASH,
                                 ring_hash_lb_config={"minimum_ring_size": {"value": 2048}}),
                 id="deprecated minimumRingSize"),
    pytest.param(LoadBalancerSettings(consistent_hash=ConsistentHashLB(
        http_header_name="x", ring_hash=RingHash(minimum_ring_size=512))), EDS,
        lb_cluster(cluster_pb2.Cluster.RING_HASH, ring_hash_lb_config={"minimum_ring_size": {"value": 512}}),
        id="ring hash"),
    pytest.param(LoadBalancerSettings(consistent_hash=ConsistentHashLB(http_header_name="x", ring_hash=RingHash())),
                 EDS, lb_cluster(cluster_pb2.Cluster.RING_HASH), id="ring hash, Envoy's default size"),
    pytest.param(LoadBalancerSettings(consistent_hash=ConsistentHashLB(
        http_header_name="x", maglev=MagLev(table_size=65537))), EDS,
        lb_cluster(cluster_pb2.Cluster.MAGLEV, maglev_lb_config={"table_size": {"value": 65537}}), id="maglev"),
    pytest.param(LoadBalancerSettings(locality_lb_setting=LocalityLoadBalancerSetting(
        distribute=(Distribute(from_="us-west/*", to={"us-west/*": 80, "us-east/*": 20}),))), EDS,
        lb_cluster(cluster_pb2.Cluster.LEAST_REQUEST, common_lb_config={"locality_weighted_lb_config": {}}),
        id="locality distribution"),
    pytest.param(LoadBalancerSettings(locality_lb_setting=LocalityLoadBalancerSetting(enabled=True)), EDS,
                 lb_cluster(cluster_pb2.Cluster.LEAST_REQUEST), id="locality failover needs no weights"),
])
def test_load_balancer(lb: LoadBalancerSettings | None, discovery: int, expected: cluster_pb2.Cluster) -> None:
    assert_proto_equal(balanced(lb, discovery), expected)


# --- hash policy ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("consistent", "expected"), [
    pytest.param(HEADER_HASH, rc.RouteAction.HashPolicy(header={"header_name": "x-user"}), id="header"),
    pytest.param(ConsistentHashLB(http_cookie=HTTPCookie(
        name="session", path="/", ttl=3600 * S, attributes=(CookieAttribute(name="SameSite", value="Strict"),
                                                            CookieAttribute(name="Secure")))),
        rc.RouteAction.HashPolicy(cookie={"name": "session", "path": "/", "ttl": duration(3600 * S), "attributes": [
            {"name": "SameSite", "value": "Strict"}, {"name": "Secure"}]}), id="cookie"),
    pytest.param(ConsistentHashLB(http_cookie=HTTPCookie(name="session")),
                 rc.RouteAction.HashPolicy(cookie={"name": "session"}), id="session cookie"),
    pytest.param(ConsistentHashLB(use_source_ip=True),
                 rc.RouteAction.HashPolicy(connection_properties={"source_ip": True}), id="source IP"),
    pytest.param(ConsistentHashLB(http_query_parameter_name="user"),
                 rc.RouteAction.HashPolicy(query_parameter={"name": "user"}), id="query parameter"),
    pytest.param(ConsistentHashLB(maglev=MagLev(table_size=65537)), None, id="nothing to hash on"),
])
def test_hash_policy(consistent: ConsistentHashLB, expected: rc.RouteAction.HashPolicy | None) -> None:
    assert_proto_equal(hash_policy(consistent), expected)


# --- which policy applies: port level, subsets ----------------------------------------------------

POOL = ConnectionPoolSettings(tcp=TCPSettings(max_connections=10))
RANDOM = LoadBalancerSettings(simple="RANDOM")
ROUND_ROBIN = LoadBalancerSettings(simple="ROUND_ROBIN")
ISTIO_MUTUAL = ClientTLSSettings(mode="ISTIO_MUTUAL")
TOP = TrafficPolicy(connection_pool=POOL, load_balancer=RANDOM, tls=ISTIO_MUTUAL, port_level_settings=(
    PortTrafficPolicy(port=PolicyPort(number=9080), load_balancer=ROUND_ROBIN),))


@pytest.mark.parametrize(("base", "subset", "port", "expected"), [
    pytest.param(None, None, 9080, None, id="no policy"),
    pytest.param(TOP, None, 9090, TrafficPolicy(connection_pool=POOL, load_balancer=RANDOM, tls=ISTIO_MUTUAL),
                 id="another port: top level"),
    pytest.param(TOP, None, 9080, TrafficPolicy(load_balancer=ROUND_ROBIN),
                 id="port level replaces all four parts"),
    pytest.param(TrafficPolicy(connection_pool=POOL), TrafficPolicy(load_balancer=RANDOM), 9080,
                 TrafficPolicy(connection_pool=POOL, load_balancer=RANDOM), id="subset overlays field by field"),
    pytest.param(TrafficPolicy(connection_pool=POOL), TrafficPolicy(port_level_settings=(
        PortTrafficPolicy(port=PolicyPort(number=9080), tls=ISTIO_MUTUAL),)), 9080,
        TrafficPolicy(tls=ISTIO_MUTUAL), id="subset's own port level last"),
])
def test_policy_for_port_and_subset(base: TrafficPolicy | None, subset: TrafficPolicy | None, port: int,
                                    expected: TrafficPolicy | None) -> None:
    assert policy.for_subset(policy.for_port(base, port), subset, port) == expected
