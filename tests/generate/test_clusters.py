"""DestinationRule → clusters: policies, subsets, TLS modes, discovery types (translation-spec §4)."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.clusters.common.dns.v3 import dns_pb2
from envoy.extensions.clusters.dns.v3 import dns_cluster_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

from testsupport import cluster

HOST = "reviews.default.svc.cluster.local"
OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _dr(spec: str, host: str = "reviews", name: str = "reviews") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: default}}
spec:
  host: {host}
{spec}
"""


def _options(c: cluster_pb2.Cluster) -> http_protocol_options_pb2.HttpProtocolOptions:
    options = http_protocol_options_pb2.HttpProtocolOptions()
    c.typed_extension_protocol_options[OPTIONS].Unpack(options)
    return options


def _tls(socket) -> tls_pb2.UpstreamTlsContext:
    context = tls_pb2.UpstreamTlsContext()
    socket.typed_config.Unpack(context)
    return context


def test_default_cluster_shape(client_config) -> None:
    c = cluster(client_config(), f"outbound|9080||{HOST}")
    assert c.type == cluster_pb2.Cluster.EDS and c.lb_policy == cluster_pb2.Cluster.LEAST_REQUEST
    assert c.connect_timeout.seconds == 10 and c.alt_stat_name == f"outbound|9080||{HOST};"
    (threshold,) = c.circuit_breakers.thresholds
    assert {threshold.max_connections.value, threshold.max_pending_requests.value,
            threshold.max_requests.value, threshold.max_retries.value} == {4294967295}
    assert c.HasField("common_lb_config") and not c.HasField("outlier_detection")
    assert c.eds_cluster_config.service_name == c.name and c.eds_cluster_config.eds_config.HasField("ads")
    metadata = json_format.MessageToDict(c.metadata)["filterMetadata"]["istio"]
    assert metadata == {"services": [{"host": HOST, "name": "reviews", "namespace": "default"}]}
    assert not c.filters, "plain Envoy gets no Istio metadata-exchange filter"
    assert [m.name for m in c.transport_socket_matches] == ["tlsMode-istio", "tlsMode-disabled"]


def test_istio_proxy_flavor_adds_metadata_exchange(client_config) -> None:
    c = cluster(client_config(istio_extensions=True), f"outbound|9080||{HOST}")
    assert [f.name for f in c.filters] == ["istio.metadata_exchange"]


def test_connection_pool_outlier_and_load_balancer(client_config) -> None:
    config = client_config(_dr("""
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 7, connectTimeout: 250ms, tcpKeepalive: {probes: 2, time: 30s, interval: 5s}, maxConnectionDuration: 10m}
      http: {http1MaxPendingRequests: 3, http2MaxRequests: 11, maxRetries: 2, maxRequestsPerConnection: 1, idleTimeout: 45s}
    outlierDetection: {consecutive5xxErrors: 0, consecutiveGatewayErrors: 4, interval: 2s, baseEjectionTime: 15s, maxEjectionPercent: 30, minHealthPercent: 10}
    loadBalancer:
      simple: LEAST_REQUEST
      warmup: {duration: 60s, aggression: 2.0, minimumPercent: 5}
"""))
    c = cluster(config, f"outbound|9080||{HOST}")
    (t,) = c.circuit_breakers.thresholds
    assert (t.max_connections.value, t.max_pending_requests.value, t.max_requests.value, t.max_retries.value) == (7, 3, 11, 2)
    assert (c.connect_timeout.seconds, c.connect_timeout.nanos) == (0, 250_000_000)
    keepalive = c.upstream_connection_options.tcp_keepalive
    assert (keepalive.keepalive_probes.value, keepalive.keepalive_time.value, keepalive.keepalive_interval.value) == (2, 30, 5)
    common = _options(c).common_http_protocol_options
    assert common.idle_timeout.seconds == 45 and common.max_requests_per_connection.value == 1
    assert common.max_connection_duration.seconds == 600
    assert _options(c).HasField("explicit_http_config"), "Istio fills the required upstream protocol"
    outlier = c.outlier_detection
    assert outlier.enforcing_success_rate.value == 0
    assert (outlier.consecutive_5xx.value, outlier.enforcing_consecutive_5xx.value) == (0, 0)
    assert (outlier.consecutive_gateway_failure.value, outlier.enforcing_consecutive_gateway_failure.value) == (4, 100)
    assert outlier.max_ejection_percent.value == 30 and outlier.base_ejection_time.seconds == 15
    assert c.common_lb_config.healthy_panic_threshold.value == 10
    slow = c.least_request_lb_config.slow_start_config
    assert slow.slow_start_window.seconds == 60 and slow.aggression.default_value == 2.0
    assert slow.min_weight_percent.value == 5


def test_port_level_settings_replace_and_subsets_overlay(client_config) -> None:
    config = client_config(_dr("""
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 10}}
    loadBalancer: {simple: RANDOM}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 99}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {consistentHash: {useSourceIp: true}}
"""))
    default = cluster(config, f"outbound|9080||{HOST}")
    assert default.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
    assert default.circuit_breakers.thresholds[0].max_connections.value == 4294967295, \
        "a port-level entry replaces the whole policy: top-level connectionPool is not inherited"
    v1 = cluster(config, f"outbound|9080|v1|{HOST}")
    assert v1.circuit_breakers.thresholds[0].max_connections.value == 99
    assert v1.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
    v2 = cluster(config, f"outbound|9080|v2|{HOST}")
    assert v2.lb_policy == cluster_pb2.Cluster.RING_HASH and v2.ring_hash_lb_config.minimum_ring_size.value == 1024
    istio = v2.metadata.filter_metadata["istio"]
    assert istio["subset"] == "v2" and istio["config"].endswith("/destination-rule/reviews")


def test_tls_modes(client_config) -> None:
    config = client_config(_dr("""
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: SIMPLE, sni: reviews.example, caCertificates: /etc/ca.pem}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}
"""))
    mutual = cluster(config, f"outbound|9080||{HOST}")
    assert not mutual.transport_socket_matches
    context = _tls(mutual.transport_socket)
    assert context.sni == f"outbound_.9080_._.{HOST}"
    assert list(context.common_tls_context.alpn_protocols) == ["istio-peer-exchange", "istio"]
    validation = context.common_tls_context.combined_validation_context.default_validation_context
    assert not validation.match_subject_alt_names  # deprecated: plain Envoy gets the typed SAN matchers
    sans = validation.match_typed_subject_alt_names
    assert [(s.san_type, s.matcher.exact) for s in sans] == [(common_pb2.SubjectAltNameMatcher.URI, "spiffe://cluster.local/ns/default/sa/reviews")]
    simple = _tls(cluster(config, f"outbound|9080|v1|{HOST}").transport_socket)
    assert simple.sni == "reviews.example" and not simple.common_tls_context.tls_certificate_sds_secret_configs
    roots = simple.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name
    assert roots == "file-root:/etc/ca.pem"
    v1 = cluster(config, f"outbound|9080|v1|{HOST}")
    assert v1.metadata.filter_metadata["istio"]["alpn_override"] == "false"
    client = _tls(cluster(config, f"outbound|9080|v2|{HOST}").transport_socket)
    assert client.common_tls_context.tls_certificate_sds_secret_configs[0].name == "file-cert:/c.pem~/k.pem"
    assert _options(cluster(config, f"outbound|9080|v2|{HOST}")).upstream_http_protocol_options.auto_sni


def test_peer_authentication_disable_turns_auto_mtls_off(client_config) -> None:
    config = client_config("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: DISABLE}
""")
    c = cluster(config, f"outbound|9080||{HOST}")
    assert not c.transport_socket_matches and not c.HasField("transport_socket")
    (cla,) = [e for e in config.endpoints if e.cluster_name == c.name]
    metadata = cla.endpoints[0].lb_endpoints[0].metadata.filter_metadata
    assert "envoy.transport_socket_match" not in metadata


def test_protocols_choose_upstream_http(client_config) -> None:
    config = client_config()
    grpc = _options(cluster(config, "outbound|9090||ratings.default.svc.cluster.local"))
    assert grpc.explicit_http_config.HasField("http2_protocol_options")
    sniffed = _options(cluster(config, "outbound|7000||ratings.default.svc.cluster.local"))
    assert sniffed.HasField("use_downstream_protocol_config")
    plain = cluster(config, "outbound|9080||ratings.default.svc.cluster.local")
    assert OPTIONS not in plain.typed_extension_protocol_options


def test_service_entry_dns_and_headless_services(client_config) -> None:
    entry = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [api.example.com]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  ports: [{name: tcp, port: 5432}]
  selector: {app: ratings}
"""
    config = client_config(entry)
    ext = cluster(config, "outbound|443||api.example.com")
    # plain Envoy: the DNS cluster type that replaces the deprecated fields Istio sets
    assert ext.cluster_type.name == "envoy.clusters.dns"
    dns = dns_cluster_pb2.DnsCluster()
    ext.cluster_type.typed_config.Unpack(dns)
    assert dns.respect_dns_ttl and not dns.all_addresses_in_single_endpoint
    assert dns.dns_lookup_family == dns_pb2.V4_ONLY and dns.dns_refresh_rate.seconds == 60
    assert not ext.HasField("dns_refresh_rate") and not ext.respect_dns_ttl
    legacy = cluster(client_config(entry, istio_extensions=True), "outbound|443||api.example.com")
    assert legacy.type == cluster_pb2.Cluster.STRICT_DNS and legacy.respect_dns_ttl  # as istiod sends it
    assert legacy.dns_lookup_family == cluster_pb2.Cluster.V4_ONLY and legacy.dns_refresh_rate.seconds == 60
    socket = ext.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (socket.address, socket.port_value) == ("api.example.com", 443)
    assert not ext.transport_socket_matches, "MESH_EXTERNAL services get no auto mTLS"
    assert ext.metadata.filter_metadata["istio"]["external"] is True
    db = cluster(config, "outbound|5432||db.default.svc.cluster.local")
    assert db.type == cluster_pb2.Cluster.ORIGINAL_DST and db.lb_policy == cluster_pb2.Cluster.CLUSTER_PROVIDED


def test_unix_socket_endpoints_become_pipes(client_config) -> None:
    """Istio's own example: a STATIC ServiceEntry endpoint `unix://PATH` is a pipe in EDS
    (Envoy refuses it as an IP)."""
    config = client_config("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: uds, namespace: default}
spec:
  hosts: [example.unix.local]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: "unix:///var/run/example/socket"}]
""")
    (cla,) = [e for e in config.endpoints if e.cluster_name == "outbound|80||example.unix.local"]
    address = cla.endpoints[0].lb_endpoints[0].endpoint.address
    assert address.WhichOneof("address") == "pipe" and address.pipe.path == "/var/run/example/socket"


def test_special_and_inbound_clusters(client_config) -> None:
    config = client_config(target="deploy/reviews-v1.default")
    names = [c.name for c in config.clusters]
    assert names[-4:] == ["BlackHoleCluster", "PassthroughCluster", "inbound|9080||", "InboundPassthroughCluster"]
    inbound = cluster(config, "inbound|9080||")
    assert inbound.type == cluster_pb2.Cluster.ORIGINAL_DST and inbound.cleanup_interval.seconds == 9223372035
    assert inbound.upstream_bind_config.source_address.address == "127.0.0.6"
    passthrough = cluster(config, "InboundPassthroughCluster")
    assert passthrough.upstream_bind_config.source_address.address == "127.0.0.6"
    assert _options(cluster(config, "PassthroughCluster")).common_http_protocol_options.idle_timeout.seconds == 300


def test_retry_budget_reaches_subsets_ports_and_the_inbound_side(client_config) -> None:
    """`trafficPolicy.retryBudget` (Istio's applyRetryBudget): on every cluster the rule's
    policy reaches, a port-level entry included (it replaces four fields, not the budget); a
    subset's own budget replaces it; the inbound cluster of a workload the rule's host
    selects takes it too, with the connection pool."""
    rule = _dr("""
  trafficPolicy:
    retryBudget: {minRetryConcurrency: 5}
    portLevelSettings:
    - port: {number: 9080}
      connectionPool: {http: {maxRetries: 4}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {retryBudget: {percent: 30}}
  - name: v2
    labels: {version: v2}
""")

    def budget(c: cluster_pb2.Cluster) -> tuple[float, int]:
        found = c.circuit_breakers.thresholds[0].retry_budget
        return found.budget_percent.value, found.min_retry_concurrency.value

    config = client_config(rule)
    default = cluster(config, f"outbound|9080||{HOST}")
    assert budget(default) == (0.2, 5) and default.circuit_breakers.thresholds[0].max_retries.value == 4
    assert budget(cluster(config, f"outbound|9080|v1|{HOST}")) == (30.0, 3)
    assert budget(cluster(config, f"outbound|9080|v2|{HOST}")) == (0.2, 5)
    assert not cluster(config, "outbound|9080||ratings.default.svc.cluster.local").circuit_breakers.thresholds[0].HasField(
        "retry_budget")
    assert budget(cluster(client_config(rule, target="deploy/reviews-v1.default"), "inbound|9080||")) == (0.2, 5)
