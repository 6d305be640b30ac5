"""What a proxy sees (Sidecar egress hosts, exportTo) and how its listeners bind (spec §2, §6.3)."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2

from testsupport import TCP_DB

SIDECAR_NONE = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: client, namespace: default}
spec:
  workloadSelector: {labels: {app: client}}
  egress:
  - port: {number: 9080, protocol: HTTP, name: http}
    bind: 127.0.0.2
    captureMode: NONE
    hosts: ["./reviews.default.svc.cluster.local"]
"""

OTHER_NAMESPACE = """
apiVersion: v1
kind: Service
metadata: {name: billing, namespace: finance}
spec:
  ports: [{name: http, port: 9080}]
  selector: {app: billing}
---
apiVersion: v1
kind: Service
metadata:
  name: secret
  namespace: finance
  annotations: {networking.istio.io/exportTo: "."}
spec:
  ports: [{name: http, port: 8000}]
"""


def _names(items) -> set[str]:
    return {item.name for item in items}


def test_default_scope_imports_every_exported_service(client_config) -> None:
    config = client_config(OTHER_NAMESPACE)
    clusters = _names(config.clusters)
    assert "outbound|9080||billing.finance.svc.cluster.local" in clusters
    assert not any("secret.finance" in name for name in clusters), "exportTo '.' hides it from other namespaces"


def test_sidecar_egress_hosts_limit_what_the_proxy_sees(client_config) -> None:
    sidecar = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./ratings.default.svc.cluster.local", "finance/*"]
"""
    clusters = _names(client_config(OTHER_NAMESPACE + "---\n" + sidecar).clusters)
    outbound = sorted(n.split("|")[3] for n in clusters if n.startswith("outbound|"))
    assert set(outbound) == {"ratings.default.svc.cluster.local", "billing.finance.svc.cluster.local"}


def test_interception_none_binds_real_listeners_without_virtual_ones(client_config) -> None:
    config = client_config(SIDECAR_NONE, interception="NONE")
    listeners = {listener.name: listener for listener in config.listeners}
    assert set(listeners) == {"127.0.0.2_9080"}
    bound = listeners["127.0.0.2_9080"]
    assert not bound.HasField("bind_to_port"), "unset means Envoy binds the port"
    assert bound.address.socket_address.address == "127.0.0.2"
    assert [r.name for r in config.routes] == ["9080"]
    (route_config,) = config.routes
    assert [vh.name for vh in route_config.virtual_hosts] == ["reviews.default.svc.cluster.local:9080", "allow_any"]
    assert "InboundPassthroughCluster" not in _names(config.clusters)


def test_pod_annotation_sets_interception_mode(client_config) -> None:
    annotated = """
apiVersion: v1
kind: Pod
metadata:
  name: tool
  namespace: default
  labels: {app: client}
  annotations: {sidecar.istio.io/interceptionMode: NONE}
spec: {containers: [{name: t, image: t}]}
status: {podIP: 10.244.9.9}
"""
    config = client_config(annotated + "---\n" + SIDECAR_NONE, target="tool.default")
    assert _names(config.listeners) == {"127.0.0.2_9080"}


def test_tcp_services_bind_their_virtual_ip(client_config) -> None:
    config = client_config(TCP_DB)
    db = {listener.name: listener for listener in config.listeners}["10.96.7.7_5432"]
    assert db.bind_to_port.value is False and db.traffic_direction == base_pb2.OUTBOUND
    (chain,) = db.filter_chains
    assert not chain.HasField("filter_chain_match")
    assert chain.filters[0].name == "envoy.filters.network.tcp_proxy"
    assert not db.HasField("default_filter_chain")


def test_virtual_inbound_has_permissive_chains_per_port(client_config) -> None:
    config = client_config(target="deploy/reviews-v1.default")
    inbound: listener_pb2.Listener = {listener.name: listener for listener in config.listeners}["virtualInbound"]
    port_chains = [c for c in inbound.filter_chains if c.filter_chain_match.destination_port.value == 9080]
    assert [(c.filter_chain_match.transport_protocol, list(c.filter_chain_match.application_protocols))
            for c in port_chains] == [
        ("tls", ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]),
        ("raw_buffer", []),
    ]
    assert port_chains[0].HasField("transport_socket") and not port_chains[1].HasField("transport_socket")
    assert [c.name for c in port_chains] == ["0.0.0.0_9080", "0.0.0.0_9080"]
    names = [f.name for f in inbound.listener_filters]
    assert names == ["envoy.filters.listener.original_dst", "envoy.filters.listener.tls_inspector",
                     "envoy.filters.listener.http_inspector"]
    # Off where no chain needs them: the HTTP port (declared HTTP, no sniffing) and the loop guard.
    http_off = inbound.listener_filters[2].filter_disabled.or_match.rules
    assert [(r.destination_port_range.start, r.destination_port_range.end) for r in http_off] == [
        (9080, 9081), (15006, 15007)]


def test_strict_mode_accepts_only_mtls(client_config) -> None:
    strict = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
"""
    config = client_config(strict, target="deploy/reviews-v1.default")
    inbound = {listener.name: listener for listener in config.listeners}["virtualInbound"]
    port_chains = [c for c in inbound.filter_chains if c.filter_chain_match.destination_port.value == 9080]
    assert [c.filter_chain_match.transport_protocol for c in port_chains] == ["tls"]


def test_cidr_service_entry_binds_wildcard_and_matches_the_range(client_config) -> None:
    config = client_config("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mongo, namespace: default}
spec:
  hosts: [mymongodb.somedomain]
  addresses: [192.192.192.192/24]
  ports: [{number: 27018, name: mongodb, protocol: MONGO}]
  resolution: STATIC
  endpoints: [{address: 2.2.2.2}, {address: 3.3.3.3}]
""")
    listener = {listener.name: listener for listener in config.listeners}["0.0.0.0_27018"]
    (chain,) = listener.filter_chains
    (prefix,) = chain.filter_chain_match.prefix_ranges
    assert (prefix.address_prefix, prefix.prefix_len.value) == ("192.192.192.192", 24)
    assert listener.default_filter_chain.name == "PassthroughFilterChain"
