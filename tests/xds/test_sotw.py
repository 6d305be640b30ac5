"""State-of-the-World ADS against a Python client: subscriptions, ACK/NACK, nonces, ordering."""

from __future__ import annotations

import json

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from helpers import Plane, eventually, mesh

from fake_mesh import cluster_name
from meshctl.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshctl.xds.status import config_status

X, Y = cluster_name("x"), cluster_name("y")


def _names(response, kind) -> list[str]:
    out = []
    for item in response.resources:
        message = kind()
        item.Unpack(message)
        out.append(getattr(message, "name", "") or getattr(message, "cluster_name", ""))
    return out


async def _subscribe_all(plane: Plane, pod: str = "web"):
    """A client holding CDS, EDS (x, y), LDS and RDS, everything ACKed, like Envoy after start."""
    client = plane.sotw(pod)
    await client.send(CLUSTER)
    cds = await client.recv()
    await client.ack(cds)
    await client.send(ENDPOINT, [X, Y])
    eds = await client.recv()
    await client.ack(eds, [X, Y])
    await client.send(LISTENER)
    lds = await client.recv()
    await client.ack(lds)
    route = "route-" + str(20000 + ["web", "api"].index(pod))
    await client.send(ROUTE, [route])
    rds = await client.recv()
    await client.ack(rds, [route])
    return client, {CLUSTER: cds, ENDPOINT: eds, LISTENER: lds, ROUTE: rds}


async def test_wildcard_and_explicit_names(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.sotw()
    await client.send(CLUSTER)
    cds = await client.recv()
    assert cds.type_url == CLUSTER and cds.nonce and cds.version_info
    assert sorted(_names(cds, cluster_pb2.Cluster)) == [X, Y]
    identifier = json.loads(cds.control_plane.identifier)
    assert identifier["Component"] == "meshctl" and identifier["ID"] and "version" in identifier["Info"]
    await client.ack(cds)
    await client.send(ENDPOINT, [X, "unknown-cluster"])
    eds = await client.recv()
    assigned = {}
    for item in eds.resources:
        cla = endpoint_pb2.ClusterLoadAssignment()
        item.Unpack(cla)
        assigned[cla.cluster_name] = cla
    assert set(assigned) == {X, "unknown-cluster"}
    assert assigned[X].endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value == 9001
    assert not assigned["unknown-cluster"].endpoints
    await client.ack(eds, [X, "unknown-cluster"])
    await client.send(ROUTE, ["route-20000", "no-such-route"])
    rds = await client.recv()
    routes = {}
    for item in rds.resources:
        config = route_pb2.RouteConfiguration()
        item.Unpack(config)
        routes[config.name] = config
    assert routes["no-such-route"] == route_pb2.RouteConfiguration(name="no-such-route")
    assert routes["route-20000"].virtual_hosts[0].routes[0].route.cluster == X


async def test_explicit_names_end_legacy_wildcard(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.sotw()
    await client.send(CLUSTER, ["*"])
    first = await client.recv()
    assert sorted(_names(first, cluster_pb2.Cluster)) == [X, Y]
    await client.send(CLUSTER, [X], first.version_info, first.nonce)
    only_x = await client.recv()
    assert _names(only_x, cluster_pb2.Cluster) == [X]
    await client.send(CLUSTER, [], only_x.version_info, only_x.nonce)
    await client.nothing()


async def test_push_order_and_eds_after_cluster_change(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client, _ = await _subscribe_all(plane)
    await plane.load(mesh("web", timeouts={"x": "3s"}, weights={"x": 50, "y": 50}))
    cds, eds, rds = await client.recv(), await client.recv(), await client.recv()
    assert [cds.type_url, eds.type_url, rds.type_url] == [CLUSTER, ENDPOINT, ROUTE]
    assert sorted(_names(cds, cluster_pb2.Cluster)) == [X, Y]  # CDS is full state
    assert _names(eds, endpoint_pb2.ClusterLoadAssignment) == [X]  # unchanged CLA resent for the changed cluster
    await client.ack(cds)
    await client.ack(eds, [X, Y])
    await client.ack(rds, ["route-20000"])
    await client.nothing()


async def test_nack_keeps_error_and_does_not_loop(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client, responses = await _subscribe_all(plane)
    await plane.load(mesh("web", timeouts={"x": "-5s"}))
    bad = await client.recv()
    assert bad.type_url == CLUSTER
    forced = await client.recv()
    assert forced.type_url == ENDPOINT  # the EDS a changed cluster needs
    await client.ack(forced, [X, Y])
    await client.nack(bad, "Invalid duration: Expected positive duration", version=responses[CLUSTER].version_info)
    await client.nothing()
    [stream] = plane.hub.proxies()
    watch = stream.watches[CLUSTER]
    assert watch.error == "Invalid duration: Expected positive duration"
    assert config_status(watch) == 4  # ERROR
    assert plane.hub.metrics.nacks.value("CDS") == 1
    await plane.load(mesh("web", timeouts={"x": "2s"}))
    fixed, forced = await client.recv(), await client.recv()
    assert (fixed.type_url, forced.type_url) == (CLUSTER, ENDPOINT)
    await client.ack(fixed)
    await eventually(lambda: watch.error == "" and config_status(watch) == 1, what="CDS SYNCED")


async def test_stale_nonce_is_ignored(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.sotw()
    await client.send(CLUSTER)
    first = await client.recv()
    await client.send(CLUSTER, [], "", "not-the-latest-nonce")
    await client.nothing()
    await client.ack(first)
    await client.nothing()


async def test_one_unacknowledged_push_per_type(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.sotw()
    await client.send(CLUSTER)
    first = await client.recv()
    await plane.load(mesh("web", timeouts={"x": "2s"}))
    await plane.load(mesh("web", timeouts={"x": "3s"}))
    await client.nothing()
    await client.ack(first)
    latest = await client.recv()
    clusters = {}
    for item in latest.resources:
        cluster = cluster_pb2.Cluster()
        item.Unpack(cluster)
        clusters[cluster.name] = cluster
    assert clusters[X].connect_timeout.seconds == 3
    await client.ack(latest)
    await client.nothing()


async def test_only_proxies_whose_resources_changed_are_pushed(plane: Plane) -> None:
    await plane.load(mesh("web", "api"))
    web, _ = await _subscribe_all(plane, "web")
    api, _ = await _subscribe_all(plane, "api")
    documents = mesh("web", "api")
    documents[1]["metadata"]["annotations"]["test.meshctl.io/upstream"] = "y"  # api now calls y directly
    await plane.load(documents)
    rds = await api.recv()
    assert rds.type_url == ROUTE and len(rds.resources) == 1
    await web.nothing()


async def test_resources_are_serialized_once_and_shared(plane: Plane) -> None:
    await plane.load(mesh("web", "api"))
    await _subscribe_all(plane, "web")
    await _subscribe_all(plane, "api")
    web, api = sorted(plane.hub.proxies(), key=lambda s: s.proxy_id, reverse=True)
    assert web.resources[CLUSTER][X] is api.resources[CLUSTER][X]
    assert web.resources[CLUSTER][X].resource.value is api.resources[CLUSTER][X].resource.value or \
        web.resources[CLUSTER][X].resource is api.resources[CLUSTER][X].resource


async def test_reconnect_holding_current_versions_gets_nothing(plane: Plane) -> None:
    await plane.load(mesh("web"))
    first, responses = await _subscribe_all(plane)
    first.close()
    again = plane.sotw()
    await again.send(CLUSTER, [], responses[CLUSTER].version_info)
    await again.send(ENDPOINT, [X, Y], responses[ENDPOINT].version_info)
    await again.nothing()
    [stream] = [s for s in plane.hub.proxies()]
    assert config_status(stream.watches[CLUSTER]) == 1  # SYNCED without a push
    await again.send(LISTENER, [], "some-old-version")
    assert (await again.recv()).type_url == LISTENER


async def test_unknown_proxy_waits_until_its_workload_appears(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.sotw("ghost")
    await client.send(CLUSTER)
    await client.nothing()
    await plane.load(mesh("web", "ghost"))
    assert (await client.recv()).type_url == CLUSTER


async def test_bad_node_id_is_refused(plane: Plane) -> None:
    await plane.load(mesh("web"))
    client = plane.sotw()
    client.node_id = "not-an-istio-node"
    await client.send(CLUSTER)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.recv()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "TYPE~IP~POD.NAMESPACE~DOMAIN" in caught.value.details()
