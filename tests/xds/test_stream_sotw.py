"""State-of-the-World ADS, the stream state machine alone: subscriptions, ACK/NACK, nonces, order.

No gRPC and no sleeping: each call returns exactly what the server would write at that moment
(see streams.py), so "nothing was sent" is an empty list.
"""

from __future__ import annotations

import json

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.status.v3 import csds_pb2
from streams import DEBUG_METADATA, FakeCache, SotwEnvoy

from fake_mesh import cluster_name, mesh
from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, SYNCZ
from meshctl.xds.status import client_config, config_status
from meshctl.xds.stream import RefusedNodeError

X, Y = cluster_name("x"), cluster_name("y")
Responses = dict[str, discovery_pb2.DiscoveryResponse]


def _unpacked(response: discovery_pb2.DiscoveryResponse, kind: type) -> dict[str, object]:
    """The response's resources by name."""
    out = {}
    for item in response.resources:
        message = kind.FromString(item.value)
        out[getattr(message, "name", "") or getattr(message, "cluster_name", "")] = message
    return out


def _names(response: discovery_pb2.DiscoveryResponse, kind: type) -> list[str]:
    return sorted(_unpacked(response, kind))


@pytest.fixture
def cache() -> FakeCache:
    cache = FakeCache()
    cache.load(mesh("web"))
    return cache


def _subscribed(cache: FakeCache, pod: str = "web") -> tuple[SotwEnvoy, Responses]:
    """An Envoy holding CDS, EDS (x, y), LDS and RDS, everything ACKed, in the order Envoy asks."""
    envoy = SotwEnvoy(cache, pod)
    [cds] = envoy.send(CLUSTER)
    assert envoy.ack(cds) == []
    [eds] = envoy.send(ENDPOINT, [X, Y])
    assert envoy.ack(eds, [X, Y]) == []
    [lds] = envoy.send(LISTENER)
    assert envoy.ack(lds) == []
    route = "route-" + str(20000 + ["web", "api"].index(pod))
    [rds] = envoy.send(ROUTE, [route])
    assert envoy.ack(rds, [route]) == []
    return envoy, {CLUSTER: cds, ENDPOINT: eds, LISTENER: lds, ROUTE: rds}


def test_first_requests_wildcard_and_explicit_names(cache: FakeCache) -> None:
    envoy = SotwEnvoy(cache)
    [cds] = envoy.send(CLUSTER)
    assert cds.type_url == CLUSTER and cds.nonce and cds.version_info
    assert _names(cds, cluster_pb2.Cluster) == [X, Y]
    identifier = json.loads(cds.control_plane.identifier)
    assert identifier["Component"] == "meshctl" and identifier["ID"] and "version" in identifier["Info"]
    assert envoy.ack(cds) == []
    [eds] = envoy.send(ENDPOINT, [X, "unknown-cluster"])
    assigned = _unpacked(eds, endpoint_pb2.ClusterLoadAssignment)
    assert set(assigned) == {X, "unknown-cluster"}
    assert assigned[X].endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value == 9001
    assert not assigned["unknown-cluster"].endpoints  # a placeholder: Envoy need not wait it out
    assert not eds.HasField("control_plane")  # announced once per stream
    assert envoy.ack(eds, [X, "unknown-cluster"]) == []
    [rds] = envoy.send(ROUTE, ["route-20000", "no-such-route"])
    routes = _unpacked(rds, route_pb2.RouteConfiguration)
    assert routes["no-such-route"] == route_pb2.RouteConfiguration(name="no-such-route")
    assert routes["route-20000"].virtual_hosts[0].routes[0].route.cluster == X


def test_explicit_names_end_the_legacy_wildcard(cache: FakeCache) -> None:
    envoy = SotwEnvoy(cache)
    [first] = envoy.send(CLUSTER, ["*"])
    assert _names(first, cluster_pb2.Cluster) == [X, Y]
    [only_x] = envoy.send(CLUSTER, [X], first.version_info, first.nonce)
    assert _names(only_x, cluster_pb2.Cluster) == [X]  # full state: Y is gone for the client
    assert envoy.send(CLUSTER, [], only_x.version_info, only_x.nonce) == []  # now "none", not wildcard
    assert not envoy.stream.watches[CLUSTER].wildcard


def test_push_order_and_eds_resent_after_a_cluster_change(cache: FakeCache) -> None:
    envoy, _ = _subscribed(cache)
    cache.load(mesh("web", timeouts={"x": "3s"}, weights={"x": 50, "y": 50}))
    cds, eds, rds = envoy.wake()
    assert [cds.type_url, eds.type_url, rds.type_url] == [CLUSTER, ENDPOINT, ROUTE]
    assert _names(cds, cluster_pb2.Cluster) == [X, Y]  # CDS is full state
    assert _names(eds, endpoint_pb2.ClusterLoadAssignment) == [X]  # unchanged CLA resent for the changed cluster
    assert envoy.ack(cds) == []
    assert envoy.ack(eds, [X, Y]) == []
    assert envoy.ack(rds, ["route-20000"]) == []


def test_nack_keeps_its_error_and_is_not_pushed_again(cache: FakeCache) -> None:
    envoy, responses = _subscribed(cache)
    cache.load(mesh("web", timeouts={"x": "-5s"}))
    bad, forced = envoy.wake()
    assert (bad.type_url, forced.type_url) == (CLUSTER, ENDPOINT)  # the EDS a changed cluster needs
    assert envoy.ack(forced, [X, Y]) == []
    detail = "Invalid duration: Expected positive duration"
    assert envoy.nack(bad, detail, version=responses[CLUSTER].version_info) == []
    watch = envoy.stream.watches[CLUSTER]
    assert watch.error == detail and config_status(watch) == csds_pb2.ERROR
    assert cache.metrics.nacks.value("CDS") == 1
    [cds] = [c for c in client_config(envoy.stream).generic_xds_configs if c.type_url == CLUSTER]
    assert cds.error_state.details == detail and cds.error_state.version_info == bad.version_info
    assert envoy.wake() == []  # the same generation: the rejected bytes are not pushed again
    cache.load(mesh("web", timeouts={"x": "2s"}))
    fixed, forced = envoy.wake()
    assert (fixed.type_url, forced.type_url) == (CLUSTER, ENDPOINT)
    assert envoy.ack(fixed) == []
    assert watch.error == "" and config_status(watch) == csds_pb2.SYNCED


def test_a_nack_is_pinned_on_the_resources_it_brought_and_their_config(cache: FakeCache) -> None:
    envoy, responses = _subscribed(cache)
    cache.load(mesh("web", timeouts={"x": "-5s"}))
    bad, forced = envoy.wake()
    assert envoy.ack(forced, [X, Y]) == []
    assert envoy.nack(bad, "Invalid duration: Expected positive duration", version=responses[CLUSTER].version_info) == []
    watch = envoy.stream.watches[CLUSTER]
    assert [item.name for item in watch.rejected] == [X]  # the only cluster new to Envoy in the push
    assert watch.origins == ("<memory>:1: Service default/x", "<memory>:1: Endpoints default/x")
    cache.load(mesh("web", timeouts={"x": "-5s", "y": "2s"}))
    again, forced = envoy.wake()  # full state: x, still bad, comes again with the changed y
    assert envoy.ack(forced, [X, Y]) == []
    assert envoy.nack(again, "Invalid duration", version=responses[CLUSTER].version_info) == []
    assert sorted(item.name for item in watch.rejected) == [X, Y]  # either may be the one
    cache.load(mesh("web", timeouts={"x": "-5s", "y": "3s"}))
    named, forced = envoy.wake()
    assert envoy.ack(forced, [X, Y]) == []
    assert envoy.nack(named, f"Error adding/updating cluster(s) {X}: bad duration") == []
    assert [item.name for item in watch.rejected] == [X]  # Envoy's message names it
    cache.load(mesh("web"))
    fixed, forced = envoy.wake()
    assert envoy.ack(fixed) == [] and watch.rejected == () and watch.origins == ()


def test_a_stale_nonce_is_ignored_with_its_subscription(cache: FakeCache) -> None:
    envoy = SotwEnvoy(cache)
    [first] = envoy.send(CLUSTER)
    assert envoy.send(CLUSTER, [], "", "not-the-latest-nonce") == []
    assert envoy.ack(first) == []
    [eds] = envoy.send(ENDPOINT, [X])
    assert envoy.send(ENDPOINT, [X, Y], eds.version_info, "an-older-nonce") == []
    assert envoy.stream.watches[ENDPOINT].names == {X}


def test_one_unacknowledged_push_per_type(cache: FakeCache) -> None:
    envoy = SotwEnvoy(cache)
    [first] = envoy.send(CLUSTER)
    cache.load(mesh("web", timeouts={"x": "2s"}))
    assert envoy.wake() == []
    cache.load(mesh("web", timeouts={"x": "3s"}))
    assert envoy.wake() == []
    [latest] = envoy.ack(first)  # the changes held back meanwhile, coalesced into one push
    assert _unpacked(latest, cluster_pb2.Cluster)[X].connect_timeout.seconds == 3
    assert envoy.ack(latest) == []


def test_unsubscribe_and_resubscribe(cache: FakeCache) -> None:
    envoy, responses = _subscribed(cache)
    assert envoy.ack(responses[ENDPOINT], [X]) == []  # Y dropped: nothing to send
    cache.load(mesh("web", services={"x": 9001, "y": 9999}))
    assert envoy.wake() == []  # only Y's endpoints changed
    [eds] = envoy.send(ENDPOINT, [X, Y], responses[ENDPOINT].version_info, responses[ENDPOINT].nonce)
    assert _names(eds, endpoint_pb2.ClusterLoadAssignment) == [Y]  # a name asked for again is sent again
    assert _unpacked(eds, endpoint_pb2.ClusterLoadAssignment)[Y].endpoints[0].lb_endpoints[0].endpoint.address \
        .socket_address.port_value == 9999


def test_only_streams_whose_resources_changed_are_pushed(cache: FakeCache) -> None:
    cache.load(mesh("web", "api"))
    web, _ = _subscribed(cache, "web")
    api, _ = _subscribed(cache, "api")
    documents = mesh("web", "api")
    documents[1]["metadata"]["annotations"]["test.meshctl.io/upstream"] = "y"  # api now calls y directly
    cache.load(documents)
    assert web.wake() == []
    [rds] = api.wake()
    assert rds.type_url == ROUTE and len(rds.resources) == 1


def test_resources_are_serialized_once_and_shared(cache: FakeCache) -> None:
    cache.load(mesh("web", "api"))
    web, responses = _subscribed(cache, "web")
    api, _ = _subscribed(cache, "api")
    assert web.stream.resources is not None and api.stream.resources is not None
    assert web.stream.resources[CLUSTER][X] is api.stream.resources[CLUSTER][X]
    [again] = SotwEnvoy(cache, "api").send(CLUSTER)
    assert again.resources == responses[CLUSTER].resources


def test_a_resuming_envoy_gets_no_clusters_or_listeners_it_holds_but_endpoints_and_routes_in_full(
        cache: FakeCache) -> None:
    _, responses = _subscribed(cache)
    again = SotwEnvoy(cache)  # a new stream, as after a server restart
    assert again.send(CLUSTER, [], responses[CLUSTER].version_info) == []
    assert config_status(again.stream.watches[CLUSTER]) == csds_pb2.SYNCED  # without a push
    # The versions match, but a subscriber may have been re-created since (a cluster waiting
    # for its endpoints): nothing says so, so endpoints and routes are answered.
    [eds] = again.send(ENDPOINT, [X, Y], responses[ENDPOINT].version_info)
    assert _names(eds, endpoint_pb2.ClusterLoadAssignment) == [X, Y]
    [rds] = again.send(ROUTE, ["route-20000"], responses[ROUTE].version_info)
    assert _names(rds, route_pb2.RouteConfiguration) == ["route-20000"]
    [lds] = again.send(LISTENER, [], "some-old-version")
    assert lds.type_url == LISTENER


def test_a_cluster_changed_during_a_restart_gets_its_endpoints_though_their_version_matches(
        cache: FakeCache) -> None:
    _, responses = _subscribed(cache)
    cache.load(mesh("web", timeouts={"x": "2s"}))  # the server restarts on a changed cluster
    again = SotwEnvoy(cache)
    [cds] = again.send(CLUSTER, [], responses[CLUSTER].version_info)
    assert _unpacked(cds, cluster_pb2.Cluster)[X].connect_timeout.seconds == 2
    [eds] = again.send(ENDPOINT, [X, Y], responses[ENDPOINT].version_info)  # the CLAs are unchanged
    assert _names(eds, endpoint_pb2.ClusterLoadAssignment) == [X, Y]
    assert again.ack(cds) == [] and again.ack(eds, [X, Y]) == []
    assert config_status(again.stream.watches[ENDPOINT]) == csds_pb2.SYNCED


def test_an_unknown_proxy_waits_until_its_workload_appears(cache: FakeCache) -> None:
    ghost = SotwEnvoy(cache, "ghost")
    assert ghost.send(CLUSTER) == []
    assert "ghost.default" in ghost.stream.unknown
    cache.load(mesh("web", "ghost"))
    [cds] = ghost.wake()
    assert cds.type_url == CLUSTER and ghost.stream.unknown == ""


def test_a_node_id_out_of_istio_form_may_not_subscribe() -> None:
    envoy = SotwEnvoy(FakeCache(), node="not-an-istio-node")
    with pytest.raises(RefusedNodeError, match="TYPE~IP~POD.NAMESPACE~DOMAIN"):
        envoy.send(CLUSTER)


def test_debug_clients_ask_with_any_id_and_acks_of_answers_are_not_answered(cache: FakeCache) -> None:
    debug = SotwEnvoy(cache, metadata=DEBUG_METADATA, node="istioctl")
    [answer] = debug.send(SYNCZ)
    assert answer.type_url == SYNCZ and [r.type_url for r in cache.debug_requests] == [SYNCZ]
    assert debug.send(SYNCZ, nonce=answer.nonce) == []
    assert debug.stream.debug and not debug.stream.watches
