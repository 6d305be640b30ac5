"""What a DestinationRule sets on an outbound tcp_proxy, as Istio's buildOutboundNetworkFilters
does: the rule's own `connectionPool.tcp` idleTimeout and maxConnectionDuration (a subset's are
not read), and source-IP hashing from the rule's consistent hash unless the routed subset
balances otherwise; with several weighted destinations, the rule of the first one's host and
no subset. A rule's `tunnel` becomes `tunneling_config` (Istio's tunnelingconfig.Apply): a routed
subset's own tunnel and nothing else, the rule's when no subset is routed; `host:port` (an IPv6
host in brackets), `use_post` for POST. Table: YAML in, the whole TcpProxy message out."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import text_format

from meshctl.generate.proxy import ProxyConfig
from testsupport import TCP_DB, tcp_db_rule

DB = TCP_DB

CLUSTER = "outbound|5432||db.default.svc.cluster.local"


POOL = """  trafficPolicy:
    connectionPool: {tcp: {idleTimeout: 90s, maxConnectionDuration: 1h, connectTimeout: 2s}}
"""
SOURCE_IP = """  trafficPolicy:
    loadBalancer: {consistentHash: {useSourceIp: true}}
"""
SUBSETS = """  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
      connectionPool: {tcp: {idleTimeout: 5s}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {consistentHash: {useSourceIp: true}}
  - name: v3
    labels: {version: v3}
"""


TUNNEL = """  trafficPolicy:
    tunnel: {targetHost: proxy.example.com, targetPort: 3128}
"""
TUNNEL_SUBSETS = """  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tunnel: {protocol: POST, targetHost: "2001:db8::1", targetPort: 8443}
  - name: v3
    labels: {version: v3}
"""


def _route(*destinations: tuple[str, int]) -> str:
    routes = "".join(f"""
    - destination: {{host: db, subset: {subset}}}
      weight: {weight}""" for subset, weight in destinations)
    return f"""
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: db, namespace: default}}
spec:
  hosts: [db]
  tcp:
  - route:{routes}
"""


CASES = {
    "no rule: nothing set": ("", f'stat_prefix: "{CLUSTER}" cluster: "{CLUSTER}"'),
    "the rule's TCP pool: idle timeout and connection duration (connect timeout is the cluster's)": (
        tcp_db_rule(POOL), f'stat_prefix: "{CLUSTER}" cluster: "{CLUSTER}" idle_timeout {{seconds: 90}} '
                     'max_downstream_connection_duration {seconds: 3600}'),
    "the rule's consistent hash on the source IP": (
        tcp_db_rule(SOURCE_IP), f'stat_prefix: "{CLUSTER}" cluster: "{CLUSTER}" hash_policy {{source_ip {{}}}}'),
    "a subset balancing otherwise turns source-IP hashing off; its own pool is not read": (
        tcp_db_rule(SOURCE_IP, SUBSETS) + _route(("v1", 100)),
        'stat_prefix: "outbound|5432|v1|db.default.svc.cluster.local" cluster: "outbound|5432|v1|db.default.svc.cluster.local"'),
    "a subset hashing on the source IP turns it on": (
        tcp_db_rule(POOL, SUBSETS) + _route(("v2", 100)),
        'stat_prefix: "outbound|5432|v2|db.default.svc.cluster.local" cluster: "outbound|5432|v2|db.default.svc.cluster.local" '
        'idle_timeout {seconds: 90} max_downstream_connection_duration {seconds: 3600} hash_policy {source_ip {}}'),
    "a subset without a balancer keeps the rule's": (
        tcp_db_rule(SOURCE_IP, SUBSETS) + _route(("v3", 100)),
        'stat_prefix: "outbound|5432|v3|db.default.svc.cluster.local" cluster: "outbound|5432|v3|db.default.svc.cluster.local" '
        'hash_policy {source_ip {}}'),
    "weighted destinations: the rule alone, no subset's balancer": (
        tcp_db_rule(SOURCE_IP, SUBSETS) + _route(("v1", 70), ("v2", 30)),
        'stat_prefix: "db.default" weighted_clusters {clusters {name: "outbound|5432|v1|db.default.svc.cluster.local" weight: 70} '
        'clusters {name: "outbound|5432|v2|db.default.svc.cluster.local" weight: 30}} hash_policy {source_ip {}}'),
    "the rule's tunnel: CONNECT to host:port": (
        tcp_db_rule(TUNNEL), f'stat_prefix: "{CLUSTER}" cluster: "{CLUSTER}" tunneling_config {{hostname: "proxy.example.com:3128"}}'),
    "a routed subset's own tunnel: POST, an IPv6 host in brackets": (
        tcp_db_rule(TUNNEL, TUNNEL_SUBSETS) + _route(("v1", 100)),
        'stat_prefix: "outbound|5432|v1|db.default.svc.cluster.local" cluster: "outbound|5432|v1|db.default.svc.cluster.local" '
        'tunneling_config {hostname: "[2001:db8::1]:8443" use_post: true}'),
    "a routed subset without a tunnel: none, though the rule has one": (
        tcp_db_rule(TUNNEL, TUNNEL_SUBSETS) + _route(("v3", 100)),
        'stat_prefix: "outbound|5432|v3|db.default.svc.cluster.local" cluster: "outbound|5432|v3|db.default.svc.cluster.local"'),
    "weighted destinations: the rule's tunnel, no subset's": (
        tcp_db_rule(TUNNEL, TUNNEL_SUBSETS) + _route(("v1", 50), ("v3", 50)),
        'stat_prefix: "db.default" weighted_clusters {clusters {name: "outbound|5432|v1|db.default.svc.cluster.local" weight: 50} '
        'clusters {name: "outbound|5432|v3|db.default.svc.cluster.local" weight: 50}} '
        'tunneling_config {hostname: "proxy.example.com:3128"}'),
}


@pytest.mark.parametrize("extra, expected", CASES.values(), ids=list(CASES))
def test_tcp_proxy_takes_the_destination_rule_of_its_host(client_config: Callable[..., ProxyConfig],
                                                         extra: str, expected: str) -> None:
    config = client_config(DB + extra)
    (chain,) = {listener.name: listener for listener in config.listeners}["10.96.7.7_5432"].filter_chains
    proxy = tcp_proxy_pb2.TcpProxy()
    assert chain.filters[-1].typed_config.Unpack(proxy)
    assert proxy == text_format.Parse(expected, tcp_proxy_pb2.TcpProxy())


EAST_WEST = """
---
apiVersion: v1
kind: Pod
metadata: {name: eastwest, namespace: istio-system, labels: {istio: eastwestgateway}}
spec: {containers: [{name: istio-proxy, image: proxyv2}]}
status: {podIP: 10.1.0.9}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network, namespace: istio-system}
spec:
  selector: {istio: eastwestgateway}
  servers: [{port: {number: 15443, name: tls, protocol: TLS}, hosts: ["*.local"], tls: {mode: AUTO_PASSTHROUGH}}]
"""


def test_auto_passthrough_takes_the_rule_but_never_its_tunnel(client_config: Callable[..., ProxyConfig]) -> None:
    """An AUTO_PASSTHROUGH chain's tcp_proxy is shaped by its service's rule as a sidecar's is
    (Istio's buildOutboundNetworkFiltersWithSingleDestination, subset by subset), except that
    the client's mTLS is never tunnelled (tunnelingconfig.Skip)."""
    rule = tcp_db_rule(POOL.rstrip("\n") + "\n    loadBalancer: {consistentHash: {useSourceIp: true}}\n"
                 "    tunnel: {targetHost: proxy.example.com, targetPort: 3128}\n", TUNNEL_SUBSETS)
    config = client_config(DB + rule + EAST_WEST, "eastwest.istio-system")
    (listener,) = [item for item in config.listeners if item.name == "0.0.0.0_15443"]
    proxies = {}
    for chain in listener.filter_chains:
        proxy = tcp_proxy_pb2.TcpProxy()
        assert chain.filters[-1].typed_config.Unpack(proxy)
        proxies[proxy.cluster] = proxy
    shaped = "idle_timeout {seconds: 90} max_downstream_connection_duration {seconds: 3600} hash_policy {source_ip {}}"
    for subset in ("", "v1", "v3"):
        name = f"outbound_.5432_.{subset}_.db.default.svc.cluster.local"
        expected = f'stat_prefix: "{name}" cluster: "{name}" {shaped}'
        assert proxies[name] == text_format.Parse(expected, tcp_proxy_pb2.TcpProxy()), subset
