"""Outbound chains and inbound endpoints where meshctl's output used to differ from Istio's:
headless per-pod listeners, overlapping CIDRs, Sidecar ingress defaultEndpoint addresses, and
a Sidecar's egressProxy for unknown traffic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshctl.envoybin import validate_bootstrap
from meshctl.generate.bootstrap import static_bootstrap
from meshctl.generate.proxy import ProxyConfig
from meshctl.model.snapshot import MeshSnapshot
from protoassert import assert_proto_equal
from testsupport import BASE, cluster, vhost

HEADLESS_TLS = """
apiVersion: v1
kind: Service
metadata: {name: vault, namespace: default}
spec:
  clusterIP: None
  ports: [{name: tls-api, port: 8443}]
  selector: {app: ratings}
"""


def test_headless_per_pod_listeners_match_no_server_name(client_config: Callable[..., ProxyConfig]) -> None:
    config = client_config(HEADLESS_TLS)
    per_pod = [listener for listener in config.listeners
               if listener.name.endswith("_8443") and not listener.name.startswith("0.0.0.0")]
    assert per_pod, [listener.name for listener in config.listeners]
    for listener in per_pod:
        (chain,) = listener.filter_chains
        assert not chain.HasField("filter_chain_match"), listener.name
        assert not listener.listener_filters  # nothing to inspect: no SNI to read


def _entry(name: str, address: str, host: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{host}]
  addresses: [{address}]
  ports: [{{number: 27018, name: tcp, protocol: TCP}}]
  resolution: STATIC
  endpoints: [{{address: 2.2.2.2}}]
"""


def test_cidrs_that_differ_in_host_bits_are_one_network(mesh: Callable[..., MeshSnapshot],
                                                        write_yaml: Callable[[str], Path],
                                                        config_for: Callable[..., ProxyConfig]) -> None:
    snapshot = mesh(write_yaml(BASE + "---" + _entry("first", "10.1.2.3/24", "first.example.com")
                               + "---" + _entry("second", "10.1.2.0/24", "second.example.com")
                               + "---" + _entry("other", "10.1.3.0/24", "other.example.com")))
    config = config_for(snapshot, "deploy/client.default")
    listener = {item.name: item for item in config.listeners}["0.0.0.0_27018"]
    ranges = [[(p.address_prefix, p.prefix_len.value) for p in chain.filter_chain_match.prefix_ranges]
              for chain in listener.filter_chains]
    assert ranges == [[("10.1.2.3", 24)], [("10.1.3.0", 24)]]
    verdict = validate_bootstrap(static_bootstrap(snapshot.proxy("deploy/client.default"), config))
    assert verdict.ok, verdict.output


def _ingress(endpoint: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: ingress, namespace: default}}
spec:
  workloadSelector: {{labels: {{app: client}}}}
  ingress:
  - port: {{number: 8080, protocol: HTTP, name: http}}
    defaultEndpoint: "{endpoint}"
"""


def _endpoint(address: str, port: int) -> endpoint_pb2.ClusterLoadAssignment:
    expected = endpoint_pb2.ClusterLoadAssignment(cluster_name="inbound|8080||")
    socket = expected.endpoints.add().lb_endpoints.add().endpoint.address.socket_address
    socket.address, socket.port_value = address, port
    return expected


def test_default_endpoint_on_any_address_is_the_proxys_own(mesh: Callable[..., MeshSnapshot],
                                                           write_yaml: Callable[[str], Path],
                                                           config_for: Callable[..., ProxyConfig]) -> None:
    snapshot = mesh(write_yaml(BASE + "---" + _ingress("0.0.0.0:8080")))
    proxy_ip = snapshot.proxy("deploy/client.default").ip
    config = config_for(snapshot, "deploy/client.default")
    assert_proto_equal(cluster(config, "inbound|8080||").load_assignment, _endpoint(proxy_ip, 8080))


def test_default_endpoint_on_any_ipv6_address_is_loopback_for_an_ipv4_proxy(
        client_config: Callable[..., ProxyConfig]) -> None:
    assert_proto_equal(cluster(client_config(_ingress("[::]:8080")), "inbound|8080||").load_assignment,
                       _endpoint("::1", 8080))
    assert_proto_equal(cluster(client_config(_ingress("[::1]:8080")), "inbound|8080||").load_assignment,
                       _endpoint("::1", 8080))
    assert_proto_equal(cluster(client_config(_ingress("127.0.0.1:8080")), "inbound|8080||").load_assignment,
                       _endpoint("127.0.0.1", 8080))


def _egress_proxy(mode: str) -> str:
    proxy = "\n    egressProxy: {host: egress.example.com, subset: v1, port: {number: 3128}}" if mode == "ALLOW_ANY" else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: default}}
spec:
  outboundTrafficPolicy:
    mode: {mode}{proxy}
"""


@pytest.mark.parametrize("mode, target", [("ALLOW_ANY", "outbound|3128|v1|egress.example.com"),
                                          ("REGISTRY_ONLY", "BlackHoleCluster")])
def test_unknown_traffic_goes_to_the_sidecars_egress_proxy(client_config: Callable[..., ProxyConfig], mode: str,
                                                           target: str) -> None:
    """Istio's catch-alls (the virtualOutbound TCP chain, each listener's PassthroughFilterChain,
    the allow_any route) send traffic to no known service to the Sidecar's egressProxy, named
    as a route destination names its cluster, instead of out through PassthroughCluster."""
    config = client_config(_egress_proxy(mode))
    listeners = {item.name: item for item in config.listeners}
    chains = [listeners["virtualOutbound"].filter_chains[1], listeners["0.0.0.0_9080"].default_filter_chain]
    for chain in chains:
        proxy = tcp_proxy_pb2.TcpProxy()
        assert chain.filters[-1].typed_config.Unpack(proxy)
        assert proxy == tcp_proxy_pb2.TcpProxy(stat_prefix=target, cluster=target), chain.name
    if mode == "ALLOW_ANY":
        (route,) = vhost(config, "9080", "allow_any").routes
        assert route.route.cluster == target
    else:
        (route,) = vhost(config, "9080", "block_all").routes
        assert route.direct_response.status == 502
