"""Incremental (Delta) ADS, the stream state machine alone: per-resource pushes, removals,
subscribe/unsubscribe, wildcard, resumption, NACKs. No gRPC, no sleeping (see streams.py)."""

from __future__ import annotations

import pytest
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.status.v3 import csds_pb2
from streams import DeltaEnvoy, FakeCache

from fake_mesh import cluster_name, mesh
from meshctl.resources import CLUSTER, ENDPOINT, LISTENER
from meshctl.xds import encoding, state
from meshctl.xds.status import client_config, config_status

X, Y = cluster_name("x"), cluster_name("y")
Response = discovery_pb2.DeltaDiscoveryResponse


def _names(response: Response) -> list[str]:
    return sorted(r.name for r in response.resources)


@pytest.fixture
def cache() -> FakeCache:
    cache = FakeCache()
    cache.load(mesh("web"))
    return cache


def _clusters_and_endpoints(cache: FakeCache) -> tuple[DeltaEnvoy, Response, Response]:
    envoy = DeltaEnvoy(cache)
    [cds] = envoy.send(CLUSTER)
    assert envoy.ack(cds) == []
    [eds] = envoy.send(ENDPOINT, subscribe=[X, Y])
    assert envoy.ack(eds) == []
    return envoy, cds, eds


def test_wildcard_then_only_changed_resources_then_removals(cache: FakeCache) -> None:
    envoy, cds, eds = _clusters_and_endpoints(cache)
    assert _names(cds) == [X, Y] and _names(eds) == [X, Y]
    assert all(r.version and r.resource.type_url == CLUSTER for r in cds.resources)
    assert envoy.stream.watches[CLUSTER].wildcard
    cache.load(mesh("web", timeouts={"x": "4s"}))
    changed, forced = envoy.wake()
    assert _names(changed) == [X] and not changed.removed_resources
    assert forced.type_url == ENDPOINT and _names(forced) == [X]  # an updated cluster needs a fresh CLA
    assert envoy.ack(changed) == []
    assert envoy.ack(forced) == []
    cache.load(mesh("web", services={"x": 9001}, timeouts={"x": "4s"}))
    removal, emptied = envoy.wake()
    assert removal.type_url == CLUSTER and not removal.resources and list(removal.removed_resources) == [Y]
    # Y's CLA is still subscribed until Envoy lets go of it: it is answered, empty.
    assert emptied.type_url == ENDPOINT and _names(emptied) == [Y]
    assert not endpoint_pb2.ClusterLoadAssignment.FromString(emptied.resources[0].resource.value).endpoints


def test_subscribe_is_always_answered_unsubscribe_stops_pushes_resubscribe_resends(cache: FakeCache) -> None:
    envoy, _, _ = _clusters_and_endpoints(cache)
    [again] = envoy.send(ENDPOINT, subscribe=[X, "missing"])
    assert _names(again) == ["missing", X]  # X too, though the client holds it
    assert envoy.ack(again) == []
    assert envoy.send(ENDPOINT, unsubscribe=[Y]) == []
    cache.load(mesh("web", services={"x": 9001, "y": 9999}))
    assert envoy.wake() == []
    [back] = envoy.send(ENDPOINT, subscribe=[Y])
    assert _names(back) == [Y]
    cla = endpoint_pb2.ClusterLoadAssignment.FromString(back.resources[0].resource.value)
    assert cla.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value == 9999


def test_explicit_wildcard_subscription(cache: FakeCache) -> None:
    envoy = DeltaEnvoy(cache)
    [only_x] = envoy.send(CLUSTER, subscribe=[X])
    assert _names(only_x) == [X] and not envoy.stream.watches[CLUSTER].wildcard
    assert envoy.ack(only_x) == []
    [rest] = envoy.send(CLUSTER, subscribe=["*"])
    assert _names(rest) == [Y]  # X is held already
    assert envoy.ack(rest) == []
    assert envoy.send(CLUSTER, unsubscribe=["*"]) == []
    cache.load(mesh("web", timeouts={"y": "5s"}))
    assert envoy.wake() == []  # Y is no longer subscribed


def test_initial_resource_versions_skip_what_the_client_holds(cache: FakeCache) -> None:
    _, cds, _ = _clusters_and_endpoints(cache)
    held = {r.name: r.version for r in cds.resources}
    resumed = DeltaEnvoy(cache)
    assert resumed.send(CLUSTER, initial=held) == []
    assert config_status(resumed.stream.watches[CLUSTER]) == csds_pb2.SYNCED
    stale = DeltaEnvoy(cache)
    [response] = stale.send(CLUSTER, initial={X: "old-version", Y: held[Y], "gone": "v1"})
    assert _names(response) == [X]
    assert list(response.removed_resources) == ["gone"]


def test_endpoints_are_sent_on_a_new_stream_whatever_versions_the_client_holds(cache: FakeCache) -> None:
    _, cds, eds = _clusters_and_endpoints(cache)
    cache.load(mesh("web", timeouts={"x": "2s"}))  # the server restarts on a changed cluster
    again = DeltaEnvoy(cache)
    [changed] = again.send(CLUSTER, initial={r.name: r.version for r in cds.resources})
    assert _names(changed) == [X]
    [endpoints] = again.send(ENDPOINT, subscribe=[X, Y], initial={r.name: r.version for r in eds.resources})
    assert _names(endpoints) == [X, Y]  # x was re-created: it warms until its assignment arrives


def test_subscription_changes_apply_even_with_a_stale_nonce(cache: FakeCache) -> None:
    envoy = DeltaEnvoy(cache)
    [pending] = envoy.send(ENDPOINT, subscribe=[X])
    assert envoy.send(ENDPOINT, subscribe=[Y], nonce="stale") == []  # one unacknowledged push per type
    assert envoy.stream.watches[ENDPOINT].names == {X, Y}
    [late] = envoy.ack(pending)
    assert _names(late) == [Y]


def test_nack_keeps_its_error_and_is_not_retried(cache: FakeCache) -> None:
    envoy = DeltaEnvoy(cache)
    [lds] = envoy.send(LISTENER)
    assert envoy.nack(lds, "listener rejected: address in use") == []
    watch = envoy.stream.watches[LISTENER]
    assert watch.error == "listener rejected: address in use" and config_status(watch) == csds_pb2.ERROR
    [entry] = client_config(envoy.stream).generic_xds_configs
    assert entry.error_state.details == "listener rejected: address in use"
    assert envoy.wake() == []
    assert cache.metrics.nacks.value("LDS") == 1


def test_shared_memos_stay_bounded_while_clients_ask_for_ever_new_subsets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two config changes, streams asking for new subsets must not grow what serve
    shares between streams (subsets, versions, diffs, response bodies) without end, and every
    answer stays right when the memo is emptied under them."""
    monkeypatch.setattr(state, "MAX_SHARED", 8)
    monkeypatch.setattr(encoding, "MAX_BODIES", 4)
    cache = FakeCache()
    cache.load(mesh("web", services={f"s{i}": 9000 + i for i in range(10)}))
    names = [cluster_name(f"s{i}") for i in range(10)]
    for first in range(10):
        for second in range(first + 1, 10):
            wanted = sorted({names[first], names[second]})
            [eds] = DeltaEnvoy(cache, pod="web").send(ENDPOINT, subscribe=wanted)
            assert _names(eds) == wanted
            assert len(cache.shared._memo) <= 8 and len(cache.encoder._bodies) <= 4
