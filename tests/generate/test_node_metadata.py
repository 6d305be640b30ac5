"""What a proxy's node metadata changes in its config, as Istio's listener builders read it.

IDLE_TIMEOUT (the agent's ISTIO_META_IDLE_TIMEOUT, a Go duration; anything else is ignored)
bounds every tcp_proxy that no DestinationRule's `connectionPool.tcp.idleTimeout` shapes:
outbound routes and default chains, the virtualOutbound catch-all, PassthroughFilterChain,
inbound and passthrough TCP chains, but not the loop guards (blackhole chains). It also sets
`common_http_protocol_options.idle_timeout` on every HTTP connection manager. HTTP10 = "1"
(and only "1") makes every connection manager accept HTTP/1.0. Tables: model in, the whole
TcpProxy or HttpConnectionManager out (a connection manager as the same proxy gets it without
the metadata, with exactly the fields Istio sets).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import duration_pb2, text_format

from meshctl.config.loader import load
from meshctl.generate.proxy import ProxyConfig, generate
from meshctl.model.meshconfig import mesh_config_text
from meshctl.model.snapshot import build_snapshot
from testsupport import BASE, INGRESS, TCP_DB, changed, connection_manager, tcp_db_rule

DB = TCP_DB
DB_CLUSTER = "outbound|5432||db.default.svc.cluster.local"
IDLE = {"IDLE_TIMEOUT": "15s"}


def _rule(pool: str) -> str:
    return tcp_db_rule(f"  trafficPolicy:\n    connectionPool: {{tcp: {pool}}}\n")


def _chain(listener: Any, name: str) -> lc.FilterChain:
    """A chain by name ("default" for the listener's default chain); the first of that name
    whose filters end in a tcp_proxy when several share it (inbound chain sets)."""
    if name == "default":
        return listener.default_filter_chain
    for chain in listener.filter_chains:
        if chain.name == name and chain.filters[-1].name == "envoy.filters.network.tcp_proxy":
            return chain
    raise AssertionError(f"no TCP chain {name!r} in {listener.name}")


def _tcp_proxy(config: ProxyConfig, listener: str, chain: str) -> tcp_proxy_pb2.TcpProxy:
    found = _chain({item.name: item for item in config.listeners}[listener], chain).filters[-1]
    assert found.name == "envoy.filters.network.tcp_proxy"
    proxy = tcp_proxy_pb2.TcpProxy()
    assert found.typed_config.Unpack(proxy)
    return proxy


TCP_CASES: dict[str, tuple[str, str, Mapping[str, str], str, str, str]] = {
    # id: (extra YAML, target, node metadata, listener, chain, expected TcpProxy)
    "outbound default chain, no rule: the node's": (
        DB, "deploy/client.default", IDLE, "10.96.7.7_5432", "",
        f'stat_prefix: "{DB_CLUSTER}" cluster: "{DB_CLUSTER}" idle_timeout {{seconds: 15}}'),
    "the rule's own idle timeout wins over the node's": (
        DB + _rule("{idleTimeout: 90s, maxConnectionDuration: 1h}"), "deploy/client.default", IDLE, "10.96.7.7_5432", "",
        f'stat_prefix: "{DB_CLUSTER}" cluster: "{DB_CLUSTER}" idle_timeout {{seconds: 90}} '
        'max_downstream_connection_duration {seconds: 3600}'),
    "a rule's pool without an idle timeout leaves the node's": (
        DB + _rule("{maxConnectionDuration: 1h}"), "deploy/client.default", IDLE, "10.96.7.7_5432", "",
        f'stat_prefix: "{DB_CLUSTER}" cluster: "{DB_CLUSTER}" idle_timeout {{seconds: 15}} '
        'max_downstream_connection_duration {seconds: 3600}'),
    "0s is a timeout too (Envoy's idle timeout disabled), not unset": (
        DB, "deploy/client.default", {"IDLE_TIMEOUT": "0s"}, "10.96.7.7_5432", "",
        f'stat_prefix: "{DB_CLUSTER}" cluster: "{DB_CLUSTER}" idle_timeout {{}}'),
    "Go durations: 1h30m": (
        DB, "deploy/client.default", {"IDLE_TIMEOUT": "1h30m"}, "10.96.7.7_5432", "",
        f'stat_prefix: "{DB_CLUSTER}" cluster: "{DB_CLUSTER}" idle_timeout {{seconds: 5400}}'),
    "not a Go duration (no unit): ignored": (
        DB, "deploy/client.default", {"IDLE_TIMEOUT": "15"}, "10.96.7.7_5432", "",
        f'stat_prefix: "{DB_CLUSTER}" cluster: "{DB_CLUSTER}"'),
    "virtualOutbound catch-all": (
        "", "deploy/client.default", IDLE, "virtualOutbound", "virtualOutbound-catchall-tcp",
        'stat_prefix: "PassthroughCluster" cluster: "PassthroughCluster" idle_timeout {seconds: 15}'),
    "virtualOutbound loop guard: none": (
        "", "deploy/client.default", IDLE, "virtualOutbound", "virtualOutbound-blackhole",
        'stat_prefix: "BlackHoleCluster" cluster: "BlackHoleCluster"'),
    "PassthroughFilterChain of a per-port listener": (
        "", "deploy/client.default", IDLE, "0.0.0.0_9080", "default",
        'stat_prefix: "PassthroughCluster" cluster: "PassthroughCluster" idle_timeout {seconds: 15}'),
    "sniffed port's TCP chain": (
        "", "deploy/client.default", IDLE, "10.96.0.60_7000", "default",
        'stat_prefix: "outbound|7000||ratings.default.svc.cluster.local" '
        'cluster: "outbound|7000||ratings.default.svc.cluster.local" idle_timeout {seconds: 15}'),
    "inbound TCP chain": (
        "", "deploy/ratings.default", IDLE, "virtualInbound", "0.0.0.0_7000",
        'stat_prefix: "inbound|7000||" cluster: "inbound|7000||" idle_timeout {seconds: 15}'),
    "inbound passthrough chain": (
        "", "deploy/ratings.default", IDLE, "virtualInbound", "virtualInbound",
        'stat_prefix: "InboundPassthroughCluster" cluster: "InboundPassthroughCluster" idle_timeout {seconds: 15}'),
    "virtualInbound loop guard: none": (
        "", "deploy/ratings.default", IDLE, "virtualInbound", "virtualInbound-blackhole",
        'stat_prefix: "BlackHoleCluster" cluster: "BlackHoleCluster"'),
}


@pytest.mark.parametrize("extra, target, metadata, listener, chain, expected", TCP_CASES.values(), ids=list(TCP_CASES))
def test_tcp_proxies_take_the_nodes_idle_timeout(client_config: Callable[..., ProxyConfig], extra: str, target: str,
                                                 metadata: Mapping[str, str], listener: str, chain: str,
                                                 expected: str) -> None:
    config = client_config(extra, target, metadata=dict(metadata))
    assert _tcp_proxy(config, listener, chain) == text_format.Parse(expected, tcp_proxy_pb2.TcpProxy())


HCM_CASES: dict[str, tuple[str, str, Mapping[str, str], str, str]] = {
    # id: (extra YAML, target, node metadata, listener, fields Istio adds)
    "outbound: idle timeout": (
        "", "deploy/client.default", IDLE, "0.0.0.0_9080", "common_http_protocol_options {idle_timeout {seconds: 15}}"),
    "outbound: HTTP/1.0": (
        "", "deploy/client.default", {"HTTP10": "1"}, "0.0.0.0_9080", "http_protocol_options {accept_http_10: true}"),
    "HTTP10 is on for \"1\" alone": ("", "deploy/client.default", {"HTTP10": "true"}, "0.0.0.0_9080", ""),
    "sniffed port: both": (
        "", "deploy/client.default", {**IDLE, "HTTP10": "1"}, "10.96.0.60_7000",
        "common_http_protocol_options {idle_timeout {seconds: 15}} http_protocol_options {accept_http_10: true}"),
    "inbound: both": (
        "", "deploy/ratings.default", {**IDLE, "HTTP10": "1"}, "virtualInbound",
        "common_http_protocol_options {idle_timeout {seconds: 15}} http_protocol_options {accept_http_10: true}"),
    "gateway: both (its HTTP/1 options were there already)": (
        INGRESS, "deploy/ingress.istio-system", {**IDLE, "HTTP10": "1"}, "0.0.0.0_8080",
        "common_http_protocol_options {idle_timeout {seconds: 15}} http_protocol_options {accept_http_10: true}"),
}


@pytest.mark.parametrize("extra, target, metadata, listener, added", HCM_CASES.values(), ids=list(HCM_CASES))
def test_connection_managers_take_the_nodes_idle_timeout_and_http10(client_config: Callable[..., ProxyConfig],
                                                                    extra: str, target: str,
                                                                    metadata: Mapping[str, str], listener: str,
                                                                    added: str) -> None:
    plain = connection_manager(client_config(extra, target, metadata={}), listener)
    assert not plain.HasField("common_http_protocol_options") and not plain.http_protocol_options.accept_http_10
    assert connection_manager(client_config(extra, target, metadata=dict(metadata)), listener) == changed(plain, added)


POD_CONFIG = """
apiVersion: v1
kind: Pod
metadata:
  name: tuned
  namespace: default
  labels: {app: tuned}
  annotations:
    proxy.istio.io/config: |
      proxyMetadata: {ISTIO_META_IDLE_TIMEOUT: 5s}
spec: {containers: [{name: c, image: c}]}
"""
MESH_CONFIG = """
defaultConfig:
  proxyMetadata: {ISTIO_META_IDLE_TIMEOUT: 30s, ISTIO_META_HTTP10: "1"}
"""


@pytest.mark.parametrize("mesh, target, idle, http10", [
    ("", "tuned.default", 5, False),
    (MESH_CONFIG, "tuned.default", 5, True),
    (MESH_CONFIG, "deploy/client.default", 30, True),
], ids=["pod annotation", "pod over mesh", "mesh default"])
def test_translate_renders_the_node_metadata_the_agent_would_send(write_yaml: Callable[[str], Path], mesh: str,
                                                                   target: str, idle: int, http10: bool) -> None:
    """Offline, a proxy's metadata is what its agent would send: ISTIO_META_* of the mesh's
    `defaultConfig.proxyMetadata` with the pod's `proxy.istio.io/config` over it."""
    result = load([str(write_yaml(BASE + "---\n" + POD_CONFIG))], "default")
    snapshot = build_snapshot(result.resources, mesh_config_text(mesh, "mesh.yaml") if mesh else None)
    manager = connection_manager(generate(snapshot, snapshot.proxy(target)), "0.0.0.0_9080")
    assert manager.common_http_protocol_options.idle_timeout == duration_pb2.Duration(seconds=idle)
    assert manager.http_protocol_options.accept_http_10 is http10


BALANCE_CASES: dict[str, tuple[Mapping[str, str], dict[str, bool]]] = {
    # id: (node metadata, {listener: has exact balance})
    "none": ({}, {"0.0.0.0_9080": False, "10.96.0.60_7000": False, "virtualOutbound": False, "virtualInbound": False}),
    "outbound: per-port listeners, never virtualOutbound": (
        {"OUTBOUND_LISTENER_EXACT_BALANCE": "true"},
        {"0.0.0.0_9080": True, "10.96.0.60_7000": True, "virtualOutbound": False, "virtualInbound": False}),
    "inbound: virtualInbound (Go booleans: 1)": (
        {"INBOUND_LISTENER_EXACT_BALANCE": "1"},
        {"0.0.0.0_9080": False, "virtualOutbound": False, "virtualInbound": True}),
    "not a Go boolean: off": ({"INBOUND_LISTENER_EXACT_BALANCE": "yes"}, {"virtualInbound": False}),
}


@pytest.mark.parametrize("metadata, expected", BALANCE_CASES.values(), ids=list(BALANCE_CASES))
def test_exact_balance_from_node_metadata(client_config: Callable[..., ProxyConfig], metadata: Mapping[str, str],
                                          expected: dict[str, bool]) -> None:
    listeners = {item.name: item for item in client_config("", "deploy/ratings.default", metadata=dict(metadata)).listeners}
    got = {name: listeners[name].HasField("connection_balance_config") for name in expected}
    assert got == expected
    for name, balanced in expected.items():
        if balanced:
            assert listeners[name].connection_balance_config.WhichOneof("balance_type") == "exact_balance"


PRIVILEGED = """
apiVersion: v1
kind: Service
metadata: {name: front, namespace: default}
spec:
  clusterIP: 10.96.8.8
  ports: [{name: http, port: 80}]
  selector: {app: front}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ratings, namespace: default}
spec:
  workloadSelector: {labels: {app: ratings}}
  ingress:
  - {port: {number: 80, protocol: HTTP, name: http}, defaultEndpoint: "127.0.0.1:8080", captureMode: NONE}
  - {port: {number: 8081, protocol: HTTP, name: http-alt}, defaultEndpoint: "127.0.0.1:8081", captureMode: NONE}
"""


@pytest.mark.parametrize("unprivileged, ports", [
    ("", ["7000", "80", "8081", "9080", "9090"]),
    ("false", ["7000", "80", "8081", "9080", "9090"]),
    ("true", ["7000", "8081", "9080", "9090"]),
], ids=["unset", "false", "unprivileged"])
def test_an_unprivileged_pod_binds_no_port_below_1024(client_config: Callable[..., ProxyConfig], unprivileged: str,
                                                      ports: list[str]) -> None:
    """Listeners that bind for real (no capture: outbound on 127.0.0.1, a Sidecar ingress port
    on the pod's address) skip ports below 1024 when the node says UNPRIVILEGED_POD, and the
    translation says so."""
    config = client_config(PRIVILEGED, "deploy/ratings.default", interception="NONE",
                           metadata={"UNPRIVILEGED_POD": unprivileged})
    outbound = sorted(item.name.split("_")[1] for item in config.listeners if item.name.startswith("127.0.0.1_"))
    inbound = sorted(item.name.split("_")[1] for item in config.listeners if not item.name.startswith("127.0.0.1_"))
    assert (outbound, inbound) == ([p for p in ports if p != "8081"], [p for p in ports if p in ("80", "8081")])
    skipped = [w for w in config.warnings if "cannot bind ports below 1024" in w]
    assert skipped == ([] if unprivileged != "true" else
                       ["outbound port 80 skipped: an unprivileged pod cannot bind ports below 1024",
                        "inbound port 80 skipped: an unprivileged pod cannot bind ports below 1024"])
