"""What serve tells about itself: istiod's debug types, CSDS, the HTTP debug server, metrics."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from envoy.admin.v3 import config_dump_shared_pb2
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from envoy.type.matcher.v3 import node_pb2
from helpers import Plane, eventually

from fake_mesh import cluster_name, mesh
from meshctl.resources import CLUSTER, CONFIG_DUMP, ENDPOINT, LISTENER, SYNCZ
from meshctl.sources.base import Rejection

DEBUG_CLIENT = {"GENERATOR": "event", "NAMESPACE": "istio-system"}


async def _http(plane: Plane, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", plane.server.debug_port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def _synced_proxy(plane: Plane, pod: str = "web"):
    client = plane.sotw(pod)
    await client.send(CLUSTER)
    await client.ack(await client.recv())
    await client.send(LISTENER)
    lds = await client.recv()
    return client, lds


def _statuses(config: csds_pb2.ClientConfig) -> dict[str, str]:
    return {c.type_url: csds_pb2.ConfigStatus.Name(c.config_status) for c in config.generic_xds_configs}


async def test_syncz_lists_proxies_with_a_status_per_type(plane: Plane) -> None:
    await plane.load(mesh("web", "api"))
    web, lds = await _synced_proxy(plane, "web")
    api = plane.sotw("api")
    await api.send(CLUSTER)
    await api.send(ENDPOINT, [cluster_name("x")])
    nack_cds = await api.recv()
    await api.recv()
    await api.nack(nack_cds, "bad cluster")
    await eventually(lambda: plane.cache.metrics.nacks.value("CDS") == 1)
    debug = plane.sotw("istioctl", metadata=DEBUG_CLIENT)
    await debug.send(SYNCZ)
    response = await debug.recv()
    assert json.loads(response.control_plane.identifier)["Component"] == "meshctl"
    configs = []
    for item in response.resources:
        config = csds_pb2.ClientConfig()
        item.Unpack(config)
        configs.append(config)
    assert [c.node.id for c in configs] == ["api.default", "web.default"]  # sorted; the debug client is not listed
    assert configs[1].node.metadata["ISTIO_VERSION"] == "1.27.0" and configs[1].node.metadata["CLUSTER_ID"] == "Kubernetes"
    assert _statuses(configs[1]) == {CLUSTER: "SYNCED", LISTENER: "STALE"}
    assert _statuses(configs[0]) == {CLUSTER: "ERROR", ENDPOINT: "STALE"}
    [cds] = [c for c in configs[0].generic_xds_configs if c.type_url == CLUSTER]
    assert cds.error_state.details == "bad cluster" and cds.last_updated.seconds > 0


async def test_config_dump_debug_type_for_connected_and_absent_proxies(plane: Plane) -> None:
    await plane.load(mesh("web", "api"))
    await _synced_proxy(plane, "web")
    debug = plane.sotw("istioctl", metadata=DEBUG_CLIENT)
    for proxy in ("web.default", "api.default"):  # api is not connected: a minimal node stands in
        await debug.send(CONFIG_DUMP, [proxy])
        response = await debug.recv()
        sections = {item.type_url.rsplit(".", 1)[1]: item for item in response.resources}
        assert {"ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump"} <= set(sections)
        listeners = config_dump_shared_pb2.ListenersConfigDump()
        sections["ListenersConfigDump"].Unpack(listeners)
        port = 20000 if proxy.startswith("web") else 20001
        assert [entry.name for entry in listeners.dynamic_listeners] == [f"listener-{port}"]
    await debug.send(CONFIG_DUMP, ["nobody.default"])
    with pytest.raises(grpc.aio.AioRpcError) as unknown:  # istiod fails the request too: no made-up config
        await debug.recv()
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    assert unknown.value.details() == (
        "proxy nobody.default is neither connected nor in the configuration; connected proxies: web.default")


async def test_csds_fetch_and_stream(plane: Plane) -> None:
    await plane.load(mesh("web", "api"))
    await _synced_proxy(plane, "web")
    await _synced_proxy(plane, "api")
    stub = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(plane.channel())
    everything = await stub.FetchClientStatus(csds_pb2.ClientStatusRequest())
    assert [c.node.id for c in everything.config] == ["api.default", "web.default"]
    matcher = node_pb2.NodeMatcher()
    matcher.node_id.prefix = "web."
    only_web = await stub.FetchClientStatus(csds_pb2.ClientStatusRequest(node_matchers=[matcher]))
    assert [c.node.id for c in only_web.config] == ["web.default"]
    call = stub.StreamClientStatus()
    await call.write(csds_pb2.ClientStatusRequest(node_matchers=[matcher]))
    streamed = await call.read()
    assert _statuses(streamed.config[0])[CLUSTER] == "SYNCED"
    call.cancel()


async def test_http_debug_endpoints(plane: Plane) -> None:
    assert (await _http(plane, "/ready"))[0] == 503
    await plane.load(mesh("web"), rejected=[Rejection("/cfg/bad.yaml", ("/cfg/bad.yaml:3: Service default/z: spec.ports: expected a list",))])
    await _synced_proxy(plane)
    assert await _http(plane, "/ready") == (200, b"ready\n")
    status, body = await _http(plane, "/debug/syncz")
    assert status == 200
    [proxy] = json.loads(body)
    assert proxy["node"]["id"] == "web.default"
    assert {c["typeUrl"]: c["configStatus"] for c in proxy["genericXdsConfigs"]}[CLUSTER] == "SYNCED"
    status, body = await _http(plane, "/debug/config_dump?proxyID=web.default")
    assert status == 200
    clusters = json.loads(body)["configs"][0]
    assert {c["cluster"]["name"] for c in clusters["dynamicActiveClusters"]} == {cluster_name("x"), cluster_name("y")}
    assert (await _http(plane, "/debug/config_dump?proxyID=nobody.default"))[0] == 404
    assert (await _http(plane, "/debug/config_dump"))[0] == 400
    status, body = await _http(plane, "/debug/configz")
    configz = json.loads(body)
    assert status == 200 and configz["version"] == plane.cache.generation.version
    assert {(r["kind"], r["name"]) for r in configz["resources"]} >= {("Pod", "web"), ("Service", "x")}
    assert configz["rejected"] == [{"file": "/cfg/bad.yaml", "problems": ["/cfg/bad.yaml:3: Service default/z: spec.ports: expected a list"]}]
    assert (await _http(plane, "/nope"))[0] == 404


async def test_metrics(plane: Plane) -> None:
    await plane.load(mesh("web"), rejected=[Rejection("/cfg/bad.yaml", ("problem",))])
    client, lds = await _synced_proxy(plane)
    await client.nack(lds, "no")
    await eventually(lambda: plane.cache.metrics.nacks.value("LDS") == 1)
    status, body = await _http(plane, "/metrics")
    text = body.decode()
    assert status == 200
    assert 'meshctl_xds_connected_proxies{mode="sotw"} 1' in text
    assert 'meshctl_xds_pushes_total{type="CDS"} 1' in text
    assert 'meshctl_xds_nacks_total{type="LDS"} 1' in text
    assert "meshctl_config_rejected_files 1" in text
    assert 'meshctl_xds_push_time_seconds_count{type="LDS"} 1' in text
    assert "meshctl_proxy_convergence_time_seconds_count 1" in text


async def test_debug_clients_come_and_go_at_debug_level(plane: Plane, caplog: pytest.LogCaptureFixture) -> None:
    """`proxy-status` opens a stream per question; at info level serve's log tells of proxies only."""
    import logging

    await plane.load(mesh("web"))
    with caplog.at_level(logging.DEBUG, logger="meshctl.xds"):
        await _synced_proxy(plane, "web")
        debug = plane.sotw("istioctl", metadata=DEBUG_CLIENT)
        await debug.send(SYNCZ)
        await debug.recv()
        debug.close()
        await eventually(lambda: any(r.msg == "disconnected" for r in caplog.records), what="the disconnect")
    levels = {(r.msg, "istioctl" in r.node): r.levelname for r in caplog.records if r.msg in ("connected", "disconnected")}
    assert levels == {("connected", False): "INFO", ("connected", True): "DEBUG", ("disconnected", True): "DEBUG"}
