"""ADS over real gRPC on loopback: what the transport adds to the stream state machine.

The protocol rules are tested without gRPC (test_stream_*.py); these check that a running server
wires them up: requests reach the stream, responses written as pre-serialized bytes parse on the
client, an accepted config wakes the stream through its queue, and a refused node is told why.
"""

from __future__ import annotations

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from helpers import Plane

from fake_mesh import cluster_name, mesh
from meshctl.resources import CLUSTER, ENDPOINT

X, Y = cluster_name("x"), cluster_name("y")


async def test_sotw_subscription_and_a_pushed_change(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.sotw()
    await client.send(CLUSTER)
    cds = await client.recv()
    assert sorted(cluster_pb2.Cluster.FromString(r.value).name for r in cds.resources) == [X, Y]
    await client.ack(cds)
    await client.send(ENDPOINT, [X, Y])
    await client.ack(await client.recv(), [X, Y])
    await plane.load(mesh("web", timeouts={"x": "3s"}))
    changed, forced = await client.recv(), await client.recv()
    assert (changed.type_url, forced.type_url) == (CLUSTER, ENDPOINT)
    clusters = [cluster_pb2.Cluster.FromString(r.value) for r in changed.resources]
    timeouts = {c.name: c.connect_timeout.seconds for c in clusters}
    assert timeouts == {X: 3, Y: 1}
    assert plane.cache.metrics.pushes.value("CDS") == 2 and plane.cache.metrics.pushes.value("EDS") == 2


async def test_delta_subscription_and_a_pushed_change(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.delta()
    await client.send(CLUSTER)
    cds = await client.recv()
    assert sorted(r.name for r in cds.resources) == [X, Y]
    await client.ack(cds)
    await plane.load(mesh("web", timeouts={"y": "2s"}))
    changed = await client.recv()
    assert [r.name for r in changed.resources] == [Y]
    [stream] = plane.cache.proxies()
    assert stream.mode == "delta" and stream.proxy_id == "web.default"


async def test_a_bad_node_id_is_refused_with_the_reason(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.sotw()
    client.node_id = "not-an-istio-node"
    await client.send(CLUSTER)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.recv()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "TYPE~IP~POD.NAMESPACE~DOMAIN" in caught.value.details()
