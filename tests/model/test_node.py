"""Istio node ids and metadata, parsed the way istiod does."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2

from meshctl.model.node import ISTIO_NODES, InvalidNodeError, claimed_account, is_debug_client, minimal_node, parse_node


def _node(node_id: str, **metadata: object) -> base_pb2.Node:
    node = base_pb2.Node(id=node_id)
    node.metadata.update(metadata)
    return node


def test_sidecar_node_with_metadata() -> None:
    proxy = parse_node(_node(
        "sidecar~10.1.2.3~productpage-v1-abc.bookinfo~bookinfo.svc.cluster.local",
        NAMESPACE="bookinfo", LABELS={"app": "productpage"}, INTERCEPTION_MODE="TPROXY", CLUSTER_ID="c1",
        ISTIO_VERSION="1.27.0", INSTANCE_IPS="10.1.2.3,fd00::3",
    ))
    assert (proxy.type, proxy.id, proxy.pod, proxy.namespace) == ("sidecar", "productpage-v1-abc.bookinfo", "productpage-v1-abc", "bookinfo")
    assert proxy.ips == ("10.1.2.3", "fd00::3")
    assert proxy.labels == {"app": "productpage"} and proxy.interception_mode == "TPROXY"
    assert (proxy.cluster_id, proxy.istio_version) == ("c1", "1.27.0")
    assert not proxy.istio_extensions


def test_namespace_falls_back_to_the_id_and_ip_to_the_node_id() -> None:
    proxy = parse_node(_node("router~10.0.0.9~gw-1.istio-system~istio-system.svc.cluster.local"))
    assert proxy.namespace == "istio-system" and proxy.ips == ("10.0.0.9",) and proxy.interception_mode == "REDIRECT"


@pytest.mark.parametrize("node_id", ["web", "a~b~c", "gateway~1.2.3.4~x.ns~ns.svc", "sidecar~1.2.3.4~~ns.svc"])
def test_malformed_ids_are_refused(node_id: str) -> None:
    with pytest.raises(InvalidNodeError):
        parse_node(_node(node_id))


def test_debug_clients_are_told_apart_from_proxies() -> None:
    assert is_debug_client(_node("istioctl", GENERATOR="event"))
    assert is_debug_client(_node("sidecar~1.1.1.1~x.ns~ns.svc.cluster.local", NAMESPACE="ns"))
    assert is_debug_client(_node("sidecar~1.1.1.1~x.ns~ns", ISTIO_VERSION="1.27", GENERATOR="event"))
    assert not is_debug_client(_node("sidecar~1.1.1.1~x.ns~ns", PROXY_CONFIG={}))
    assert not is_debug_client(_node("sidecar~1.1.1.1~x.ns~ns", ISTIO_VERSION="1.27"))


def test_minimal_node_parses_back() -> None:
    proxy = parse_node(minimal_node("reviews-v2.bookinfo"))
    assert (proxy.id, proxy.namespace, proxy.dns_domain) == ("reviews-v2.bookinfo", "bookinfo", "bookinfo.svc.cluster.local")


def test_istio_proxy_builds_are_told_by_their_extensions() -> None:
    node = _node("sidecar~10.0.0.1~web.default~default.svc.cluster.local")
    node.extensions.add(name="envoy.filters.http.router")
    assert not parse_node(node).istio_extensions
    node.extensions.add(name="istio.metadata_exchange")
    assert parse_node(node).istio_extensions


def test_the_servers_identity_of_proxies_debug_clients_and_refused_ids() -> None:
    proxy = ISTIO_NODES.identify(_node("sidecar~10.0.0.1~web.shop~shop.svc.cluster.local", NAMESPACE="shop",
                                       ISTIO_VERSION="1.27.0", LABELS={"app": "web"}))
    assert (proxy.key, proxy.proxy, proxy.refusal) == ("web.shop", True, "")
    assert proxy.shown == {"NAMESPACE": "shop", "ISTIO_VERSION": "1.27.0"}  # not every key: the ones syncz shows
    debug = ISTIO_NODES.identify(_node("istioctl", GENERATOR="event"))
    assert (debug.key, debug.proxy) == ("istioctl", False) and "TYPE~IP~POD.NAMESPACE~DOMAIN" in debug.refusal
    assert parse_node(ISTIO_NODES.stand_in("web.shop")).id == "web.shop"


def test_the_account_a_node_claims() -> None:
    assert claimed_account(_node("sidecar~1.1.1.1~x.ns~ns", NAMESPACE="other", SERVICE_ACCOUNT="api")) == ("other", "api")
    assert claimed_account(_node("sidecar~1.1.1.1~x.ns~ns")) == ("ns", "default")
    assert claimed_account(_node("web")) == ("default", "default")



def test_a_served_proxy_keeps_what_its_agent_sent_in_node_metadata() -> None:
    """The round trip serve relies on: translate's proxy (the mesh's proxyMetadata with its
    pod's proxy.istio.io/config over it among its metadata), its bootstrap's node, and the
    proxy serve makes of that node again, whose flags (what generation reads of node
    metadata) are the same."""
    from meshctl.config.loader import load_data
    from meshctl.generate.bootstrap import ads_bootstrap
    from meshctl.model.meshconfig import mesh_config_text
    from meshctl.model.proxy import NodeFlags, for_node
    from meshctl.model.snapshot import build_snapshot

    pod = """
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: shop
  annotations:
    proxy.istio.io/config: "proxyMetadata: {ISTIO_META_IDLE_TIMEOUT: 2m, ISTIO_META_HTTP10: '1', OTHER: x}"
spec: {containers: [{name: c, image: c}]}
status: {podIP: 10.1.2.3}
"""
    mesh = mesh_config_text("defaultConfig: {proxyMetadata: {ISTIO_META_IDLE_TIMEOUT: 1s, ISTIO_META_DNS_CAPTURE: 'true'}}",
                            "mesh.yaml")
    snapshot = build_snapshot(load_data(pod.encode(), "pod.yaml").resources, mesh)
    offline = snapshot.proxy("web-1.shop")
    assert offline.metadata == {"IDLE_TIMEOUT": "2m", "HTTP10": "1", "DNS_CAPTURE": "true"}
    assert offline.flags == NodeFlags(idle_timeout=120_000_000_000, http10=True)
    served = for_node(parse_node(ads_bootstrap(offline, "127.0.0.1", 15010, admin_port=15000).node), offline.workload)
    assert served.flags == offline.flags
    assert served.metadata["DNS_CAPTURE"] == "true"


def test_the_agent_describes_its_proxy_from_what_injection_put_in_its_environment() -> None:
    """istio-agent's node carries its container's ISTIO_META_* and PROXY_CONFIG: injected from the
    mesh's proxyMetadata and the pod's proxy.istio.io/config, they are how a pod served through
    its agent (not from a config directory) gets its idle timeout and proxyHeaders. Through the
    agent's bootstrap, serve's proxy has them; variables of other names are not metadata."""
    from meshctl.generate.bootstrap import ads_bootstrap
    from meshctl.model.proxy import NodeFlags, Proxy, for_node, from_environment

    bare = Proxy(id="web-1.shop", namespace="shop", ip="10.1.2.3", metadata={"DNS_CAPTURE": "true"})
    environment = {"ISTIO_META_IDLE_TIMEOUT": "2m", "ISTIO_META_DNS_CAPTURE": "false", "HOME": "/",
                   "PROXY_CONFIG": '{"concurrency":2,"proxyHeaders":{"server":{"disabled":true}}}\n'}
    proxy = from_environment(bare, environment)
    assert proxy.metadata == {"IDLE_TIMEOUT": "2m", "DNS_CAPTURE": "false"}
    assert proxy.flags == NodeFlags(idle_timeout=120_000_000_000)
    assert proxy.proxy_config == '{"proxyHeaders":{"server":{"disabled":true}}}'
    assert proxy.proxy_headers is not None and proxy.proxy_headers.server is not None
    assert proxy.proxy_headers.server.disabled and proxy.proxy_headers.request_id is None
    served = for_node(parse_node(ads_bootstrap(proxy, "127.0.0.1", 15010, admin_port=15000).node), None)
    assert served.flags == proxy.flags and served.proxy_headers == proxy.proxy_headers
    assert from_environment(bare, {"HOME": "/", "PROXY_CONFIG": "not json"}) is bare
    traced = from_environment(bare, {"PROXY_CONFIG": '{"concurrency":2,"tracing":{"sampling":5}}'})
    assert traced.proxy_config == '{"tracing":{"sampling":5}}'
    assert traced.proxy_tracing is not None and traced.proxy_tracing.sampling == 5
    assert traced.proxy_headers is not None and traced.proxy_headers.server is None, \
        "a ProxyConfig of its own without proxyHeaders has Istio's defaults, not the mesh's"
