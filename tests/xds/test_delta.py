"""Incremental (Delta) ADS: per-resource pushes, removals, subscribe/unsubscribe, resumption."""

from __future__ import annotations

from helpers import Plane, eventually, mesh

from fake_mesh import cluster_name
from meshctl.xds.resources import CLUSTER, ENDPOINT, LISTENER
from meshctl.xds.status import config_status

X, Y = cluster_name("x"), cluster_name("y")


async def _clusters_and_endpoints(plane: Plane):
    client = plane.delta()
    await client.send(CLUSTER)
    cds = await client.recv()
    await client.ack(cds)
    await client.send(ENDPOINT, subscribe=[X, Y])
    eds = await client.recv()
    await client.ack(eds)
    return client, cds, eds


async def test_wildcard_then_only_changed_resources(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client, cds, eds = await _clusters_and_endpoints(plane)
    assert sorted(r.name for r in cds.resources) == [X, Y]
    assert all(r.version and r.resource.type_url == CLUSTER for r in cds.resources)
    assert sorted(r.name for r in eds.resources) == [X, Y]
    await plane.load(mesh("web", timeouts={"x": "4s"}))
    changed, forced = await client.recv(), await client.recv()
    assert [r.name for r in changed.resources] == [X] and not changed.removed_resources
    assert forced.type_url == ENDPOINT and [r.name for r in forced.resources] == [X]
    await client.ack(changed)
    await client.ack(forced)
    await plane.load(mesh("web", services={"x": 9001}, timeouts={"x": "4s"}))
    removal = await client.recv()
    assert removal.type_url == CLUSTER and not removal.resources and list(removal.removed_resources) == [Y]


async def test_subscribe_is_always_answered_and_unsubscribe_stops_pushes(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client, _, _ = await _clusters_and_endpoints(plane)
    await client.send(ENDPOINT, subscribe=[X, "missing"])
    again = await client.recv()
    assert sorted(r.name for r in again.resources) == ["missing", X]
    await client.ack(again)
    await client.send(ENDPOINT, unsubscribe=[Y])
    await client.nothing()
    await plane.load(mesh("web", services={"x": 9001, "y": 9999}))
    await client.nothing()


async def test_initial_resource_versions_skip_what_the_client_holds(plane: Plane) -> None:
    await plane.load(mesh("web"))
    first, cds, _ = await _clusters_and_endpoints(plane)
    held = {r.name: r.version for r in cds.resources}
    first.close()
    resumed = plane.delta()
    await resumed.send(CLUSTER, initial=held)
    await resumed.nothing()
    await eventually(lambda: any(s.mode == "delta" and CLUSTER in s.watches and config_status(s.watches[CLUSTER]) == 1
                                 for s in plane.hub.streams), what="resumed stream SYNCED")
    stale = plane.delta()
    await stale.send(CLUSTER, initial={X: "old-version", Y: held[Y], "gone": "v1"})
    response = await stale.recv()
    assert [r.name for r in response.resources] == [X]
    assert list(response.removed_resources) == ["gone"]


async def test_subscription_changes_apply_even_with_a_stale_nonce(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.delta()
    await client.send(ENDPOINT, subscribe=[X])
    pending = await client.recv()
    await client.send(ENDPOINT, subscribe=[Y], nonce="stale")
    await client.nothing()  # one unacknowledged push per type
    await client.ack(pending)
    late = await client.recv()
    assert [r.name for r in late.resources] == [Y]


async def test_nack_is_recorded_and_not_retried(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.delta()
    await client.send(LISTENER)
    lds = await client.recv()
    await client.send(LISTENER, nonce=lds.nonce, error="listener rejected: address in use")
    await client.nothing()
    [stream] = plane.hub.proxies()
    await eventually(lambda: stream.watches[LISTENER].error == "listener rejected: address in use")
    assert config_status(stream.watches[LISTENER]) == 4
