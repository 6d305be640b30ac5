"""Streams of one view share every response body (encoding.py) and every subscription set
(limits.check_names): what stays each stream's own must never leak into another's.

A body shared by reference is only safe while each stream's own fields (its nonce, the control
plane announcement of its first response) are added to a copy, and while an ACK or a NACK is
recorded on its own stream's watch alone. These tests fail if a payload carries another
stream's nonce or a field twice, or if one proxy's NACK holds back or marks another.
"""

from __future__ import annotations

import asyncio

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.status.v3 import csds_pb2
from streams import DeltaEnvoy, FakeCache, SotwEnvoy

from fake_mesh import cluster_name, mesh
from meshctl.resources import CLUSTER, ENDPOINT
from meshctl.xds.limits import Names, read
from meshctl.xds.status import config_status

X, Y = cluster_name("x"), cluster_name("y")


@pytest.fixture
def cache() -> FakeCache:
    cache = FakeCache()
    cache.load(mesh("web"))
    return cache


def _exact(payload: bytes, message: type[discovery_pb2.DiscoveryResponse | discovery_pb2.DeltaDiscoveryResponse]) -> None:
    """The payload holds each singular field once: parsed and written again it is as long (a
    second nonce appended to a shared body would be dropped by the parser, and shorten it)."""
    assert len(message.FromString(payload).SerializeToString()) == len(payload)


def _sotw_pair(cache: FakeCache) -> tuple[SotwEnvoy, SotwEnvoy]:
    """Two Envoys of the same pod (one view), both holding CDS and EDS of x and y, with nonce
    counters apart (the first asked for x alone before), so equal bodies need different nonces."""
    first, second = SotwEnvoy(cache), SotwEnvoy(cache)
    for envoy in (first, second):
        [cds] = envoy.send(CLUSTER)
        assert envoy.ack(cds) == []
    [eds] = first.send(ENDPOINT, [X])
    assert first.ack(eds, [X]) == []
    for envoy in (first, second):
        [eds] = envoy.send(ENDPOINT, [X, Y])
        assert envoy.ack(eds, [X, Y]) == []
    return first, second


def test_sotw_streams_sharing_a_body_each_carry_their_own_nonce(cache: FakeCache) -> None:
    first, second = _sotw_pair(cache)
    cache.load(mesh("web", timeouts={"x": "3s"}))
    pushes = {envoy: envoy.stream.on_config() for envoy in (first, second)}
    cds = {envoy: discovery_pb2.DiscoveryResponse.FromString(p[0].payload) for envoy, p in pushes.items()}
    assert cds[first].resources == cds[second].resources and cds[first].version_info == cds[second].version_info
    assert cds[first].nonce != cds[second].nonce
    for envoy, payloads in pushes.items():
        for push in payloads:
            _exact(push.payload, discovery_pb2.DiscoveryResponse)
            assert discovery_pb2.DiscoveryResponse.FromString(push.payload).nonce == envoy.stream.watches[push.type_url].nonce_sent
    # One stream's nonce means nothing on the other: an ACK carrying it is stale there.
    assert second.send(CLUSTER, [], cds[first].version_info, cds[first].nonce) == []
    assert second.stream.watches[CLUSTER].pending and not first.stream.watches[CLUSTER].error


def test_a_sotw_nack_on_one_stream_leaves_the_other_synced_and_pushed(cache: FakeCache) -> None:
    first, second = _sotw_pair(cache)
    before = first.stream.watches[CLUSTER].version_acked
    cache.load(mesh("web", timeouts={"x": "-5s"}))
    [bad_first, eds_first], [bad_second, eds_second] = first.wake(), second.wake()
    assert bad_first.resources == bad_second.resources
    assert first.nack(bad_first, "Invalid duration", version=before) == []
    assert second.ack(bad_second) == [] and second.ack(eds_second, [X, Y]) == []
    assert first.ack(eds_first, [X, Y]) == []
    nacked, acked = first.stream.watches[CLUSTER], second.stream.watches[CLUSTER]
    assert nacked.error == "Invalid duration" and config_status(nacked) == csds_pb2.ERROR
    assert nacked.version_acked == before and nacked.rejected
    assert acked.error == "" and not acked.rejected and config_status(acked) == csds_pb2.SYNCED
    assert acked.version_acked == bad_second.version_info
    # The next change reaches both; the NACK pinned nothing on the stream that accepted.
    cache.load(mesh("web", timeouts={"x": "2s"}))
    [fixed_first, _], [fixed_second, _] = first.wake(), second.wake()
    assert [c.name for c in map(cluster_pb2.Cluster.FromString, (r.value for r in fixed_second.resources))] == [X, Y]
    assert fixed_first.version_info == fixed_second.version_info and fixed_first.nonce != fixed_second.nonce
    assert first.ack(fixed_first) == [] and nacked.error == ""


def test_delta_streams_share_bodies_not_nonces_and_a_nack_stays_on_its_stream(cache: FakeCache) -> None:
    first, second = DeltaEnvoy(cache), DeltaEnvoy(cache)
    for envoy in (first, second):
        [cds] = envoy.send(CLUSTER)
        assert envoy.ack(cds) == []
    [eds] = first.send(ENDPOINT, subscribe=[X])  # the first stream's counter moves ahead
    assert first.ack(eds) == []
    cache.load(mesh("web", timeouts={"x": "-5s"}))
    pushes = {envoy: envoy.stream.on_config() for envoy in (first, second)}
    assert [p.type_url for p in pushes[first]] == [CLUSTER, ENDPOINT] and [p.type_url for p in pushes[second]] == [CLUSTER]
    bad = {envoy: discovery_pb2.DeltaDiscoveryResponse.FromString(p[0].payload) for envoy, p in pushes.items()}
    assert bad[first].resources == bad[second].resources and bad[first].nonce != bad[second].nonce
    for envoy, payloads in pushes.items():
        for push in payloads:
            _exact(push.payload, discovery_pb2.DeltaDiscoveryResponse)
            assert discovery_pb2.DeltaDiscoveryResponse.FromString(push.payload).nonce == envoy.stream.watches[push.type_url].nonce_sent
    assert first.nack(bad[first], "Invalid duration") == []
    assert second.send(CLUSTER, nonce=bad[first].nonce) == []  # the other stream's nonce: no reply there
    assert second.stream.watches[CLUSTER].pending and second.stream.watches[CLUSTER].error == ""
    assert second.ack(bad[second]) == []
    assert first.stream.watches[CLUSTER].error == "Invalid duration"
    assert second.stream.watches[CLUSTER].error == "" and not second.stream.watches[CLUSTER].pending


def _read(request: discovery_pb2.DiscoveryRequest) -> tuple[discovery_pb2.DiscoveryRequest, Names]:
    """A request as the stream's reader hands it over: decoded from its bytes (limits.read)."""
    decoded, names = asyncio.run(read(discovery_pb2.DiscoveryRequest, request.SerializeToString()))
    assert isinstance(decoded, discovery_pb2.DiscoveryRequest) and isinstance(names, Names)
    return decoded, names


def test_byte_identical_acks_of_two_streams_are_read_once_and_each_acks_its_own_push(cache: FakeCache) -> None:
    first, second = SotwEnvoy(cache), SotwEnvoy(cache)
    for envoy in (first, second):  # the same history: the same nonces
        [cds] = envoy.send(CLUSTER)
        assert envoy.ack(cds) == []
        [eds] = envoy.send(ENDPOINT, [X, Y])
        assert envoy.ack(eds, [X, Y]) == []
    cache.load(mesh("web", timeouts={"x": "3s"}))
    [cds_first, eds_first], [cds_second, eds_second] = first.wake(), second.wake()
    assert (cds_first.nonce, eds_first.nonce) == (cds_second.nonce, eds_second.nonce)
    acks = [discovery_pb2.DiscoveryRequest(type_url=ENDPOINT, version_info=eds.version_info, response_nonce=eds.nonce,
                                           resource_names=[X, Y]) for eds in (eds_first, eds_second)]
    [(request, names)], [(again, names_again)] = [_read(acks[0])], [_read(acks[1])]
    assert again is request and names_again is names  # one decoding for both streams
    nack = discovery_pb2.DiscoveryRequest(type_url=CLUSTER, version_info="", response_nonce=cds_first.nonce,
                                          error_detail={"code": 3, "message": "Invalid duration"})
    assert first.stream.on_request(*_read(nack)) == []
    assert second.stream.on_request(*_read(discovery_pb2.DiscoveryRequest(
        type_url=CLUSTER, version_info=cds_second.version_info, response_nonce=cds_second.nonce))) == []
    for envoy in (first, second):
        assert envoy.stream.on_request(request, names) == []
        assert not envoy.stream.watches[ENDPOINT].pending
        assert envoy.stream.watches[ENDPOINT].version_acked == eds_first.version_info
    # The shared request changed nothing but each stream's own watch: the NACK stays where it was sent.
    assert first.stream.watches[CLUSTER].error == "Invalid duration" and second.stream.watches[CLUSTER].error == ""
    assert config_status(second.stream.watches[CLUSTER]) == csds_pb2.SYNCED
    assert request.response_nonce == eds_first.nonce and not request.HasField("error_detail")


def test_byte_identical_delta_replies_of_two_streams_are_read_once_and_a_nack_marks_only_its_stream(cache: FakeCache) -> None:
    first, second = DeltaEnvoy(cache), DeltaEnvoy(cache)
    for envoy in (first, second):
        [cds] = envoy.send(CLUSTER)
        assert envoy.ack(cds) == []
    cache.load(mesh("web", timeouts={"x": "-5s"}))
    [bad_first], [bad_second] = first.wake(), second.wake()
    assert bad_first.nonce == bad_second.nonce
    nack = discovery_pb2.DeltaDiscoveryRequest(type_url=CLUSTER, response_nonce=bad_first.nonce,
                                               error_detail={"code": 3, "message": "Invalid duration"})
    raw = nack.SerializeToString()
    (request, names), (again, _) = (asyncio.run(read(discovery_pb2.DeltaDiscoveryRequest, raw)) for _ in range(2))
    assert again is request and isinstance(names, Names)
    assert first.stream.on_request(request, names) == []  # the first stream rejects the push
    assert first.stream.watches[CLUSTER].error == "Invalid duration"
    assert request == nack and request.SerializeToString() == raw  # read, never changed: fit to share
    assert second.stream.watches[CLUSTER].pending and second.stream.watches[CLUSTER].error == ""
    assert second.ack(bad_second) == []  # the second accepts it: the NACK read for the first is not its
    assert second.stream.watches[CLUSTER].error == "" and first.stream.watches[CLUSTER].error == "Invalid duration"
