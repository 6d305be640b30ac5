"""Istio node ids and metadata, parsed the way istiod does."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2

from meshctl.xds.node import InvalidNodeError, is_debug_client, minimal_node, parse_node


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
