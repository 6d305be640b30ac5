"""CSDS node matchers: Envoy's semantics (RE2 regular expressions, metadata StructMatchers), and
no request, however hostile, holds up the control plane."""

from __future__ import annotations

import time

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from envoy.type.matcher.v3 import node_pb2, string_pb2, struct_pb2, value_pb2
from helpers import Plane
from serve_process import ReadyProbe
from world import World

from fake_mesh import mesh
from meshctl.xds.matchers import MatcherError, node_matchers, string_matcher, struct_matcher

NODE = base_pb2.Node(id="sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local")
NODE.metadata.update({"NAMESPACE": "shop", "LABELS": {"app": "web", "version": "v2"}, "REPLICAS": 3,
                      "CANARY": True, "IPS": ["10.0.0.1", "10.0.0.2"], "NOTHING": None})
CATASTROPHIC = "(.*.*)*X"  # exponential under backtracking; linear under RE2


def _text(**fields: object) -> string_pb2.StringMatcher:
    matcher = string_pb2.StringMatcher()
    for key, value in fields.items():
        if key == "regex":
            matcher.safe_regex.regex = str(value)
        else:
            setattr(matcher, key, value)
    return matcher


def _meta(path: list[str], **value: object) -> struct_pb2.StructMatcher:
    matcher = struct_pb2.StructMatcher(path=[struct_pb2.StructMatcher.PathSegment(key=k) for k in path])
    matcher.value.CopyFrom(value_pb2.ValueMatcher(**value))  # type: ignore[arg-type]
    return matcher


@pytest.mark.parametrize(("fields", "value", "expected"), [
    ({"exact": "Web"}, "web", False),
    ({"exact": "Web", "ignore_case": True}, "web", True),
    ({"prefix": "side"}, NODE.id, True),
    ({"suffix": ".LOCAL", "ignore_case": True}, NODE.id, True),
    ({"contains": "web-1.shop"}, NODE.id, True),
    ({"regex": "sidecar~.*~web-[0-9]+\\.shop~.*"}, NODE.id, True),
    ({"regex": "web"}, NODE.id, False),  # a full match, as Envoy's safe_regex
])
def test_string_matchers(fields: dict[str, object], value: str, expected: bool) -> None:
    assert string_matcher(_text(**fields))(value) is expected


def test_a_catastrophic_regex_is_matched_in_linear_time() -> None:
    match = string_matcher(_text(regex=CATASTROPHIC))
    started = time.perf_counter()
    assert not match("a" * 4096)
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(("fields", "message"), [
    ({"regex": "(unclosed"}, "is not an RE2 expression: missing )"),
    ({"regex": "(a)\\1"}, "is not an RE2 expression"),  # backreferences: not RE2
    ({"regex": "a" * 1025}, "longer than 1024 bytes"),
    ({"regex": "((a{1000}){1000}){1000}"}, "is not an RE2 expression"),
    ({}, "string matcher (none) is not supported"),
])
def test_refused_string_matchers(fields: dict[str, object], message: str) -> None:
    with pytest.raises(MatcherError, match=message.replace("(", "\\(").replace(")", "\\)")):
        string_matcher(_text(**fields))


@pytest.mark.parametrize(("matcher", "expected"), [
    (_meta(["NAMESPACE"], string_match=_text(exact="shop")), True),
    (_meta(["LABELS", "version"], string_match=_text(prefix="v")), True),
    (_meta(["LABELS", "version", "deeper"], present_match=True), False),
    (_meta(["LABELS", "missing"], present_match=False), True),
    (_meta(["LABELS"], present_match=True), True),
    (_meta(["REPLICAS"], double_match={"range": {"start": 1, "end": 3}}), False),  # end is exclusive
    (_meta(["REPLICAS"], double_match={"exact": 3}), True),
    (_meta(["CANARY"], bool_match=True), True),
    (_meta(["NOTHING"], null_match={}), True),
    (_meta(["IPS"], list_match={"one_of": {"string_match": _text(exact="10.0.0.2")}}), True),
    (_meta(["NAMESPACE"], or_match={"value_matchers": [{"string_match": _text(exact="a")},
                                                       {"string_match": _text(regex="sh.p")}]}), True),
    (_meta(["NAMESPACE"], bool_match=True), False),
])
def test_struct_matchers_on_node_metadata(matcher: struct_pb2.StructMatcher, expected: bool) -> None:
    assert struct_matcher(matcher)(NODE.metadata) is expected


def test_node_matchers_are_an_or_of_ands() -> None:
    in_shop = _meta(["NAMESPACE"], string_match=_text(exact="shop"))
    v1 = _meta(["LABELS", "version"], string_match=_text(exact="v1"))
    assert node_matchers([])(NODE, "web-1.shop")
    assert node_matchers([node_pb2.NodeMatcher(node_id=_text(exact="web-1.shop"), node_metadatas=[in_shop])])(NODE, "web-1.shop")
    assert not node_matchers([node_pb2.NodeMatcher(node_metadatas=[in_shop, v1])])(NODE, "web-1.shop")
    either = [node_pb2.NodeMatcher(node_metadatas=[v1]), node_pb2.NodeMatcher(node_id=_text(prefix="sidecar~"))]
    assert node_matchers(either)(NODE, "web-1.shop")
    with pytest.raises(MatcherError, match="more than 64 node_matchers"):
        node_matchers([node_pb2.NodeMatcher()] * 65)
    with pytest.raises(MatcherError, match="needs a path"):
        node_matchers([node_pb2.NodeMatcher(node_metadatas=[struct_pb2.StructMatcher()])])


async def test_csds_selects_by_metadata_and_refuses_bad_matchers(plane: Plane) -> None:
    await plane.load(mesh("web", "api"))
    for pod, namespace_label in (("web", "shop"), ("api", "admin")):
        client = plane.sotw(pod, {"NAMESPACE": "default", "LABELS": {"team": namespace_label}, "PROXY_CONFIG": {}})
        from meshctl.resources import CLUSTER

        await client.send(CLUSTER)
        await client.ack(await client.recv())
    stub = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(plane.channel())
    shop = node_pb2.NodeMatcher(node_metadatas=[_meta(["LABELS", "team"], string_match=_text(exact="shop"))])
    answer = await stub.FetchClientStatus(csds_pb2.ClientStatusRequest(node_matchers=[shop]))
    assert [c.node.id for c in answer.config] == ["web.default"]
    bad = node_pb2.NodeMatcher(node_id=_text(regex="(a)\\1"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.FetchClientStatus(csds_pb2.ClientStatusRequest(node_matchers=[bad]))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "node_matchers: safe_regex.regex '(a)\\\\1' is not an RE2 expression" in (refused.value.details() or "")


def test_a_catastrophic_regex_neither_freezes_serve_nor_stops_sigterm(world: World) -> None:
    world.envoy()
    matcher = node_pb2.NodeMatcher(node_id=_text(regex=CATASTROPHIC))
    with grpc.insecure_channel(f"127.0.0.1:{world.serve.xds_port}") as channel, ReadyProbe(world.serve) as probe:
        stub = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(channel)
        time.sleep(0.1)
        started = time.perf_counter()
        answer = stub.FetchClientStatus(csds_pb2.ClientStatusRequest(node_matchers=[matcher]), timeout=5)
        took = time.perf_counter() - started
        everyone = stub.FetchClientStatus(csds_pb2.ClientStatusRequest(), timeout=5)
        time.sleep(0.1)
    assert not answer.config and [c.node.id for c in everyone.config] == ["web.default"]
    assert took < 1.0
    probe.check()
    process = world.serve.process
    assert process is not None
    process.terminate()
    assert process.wait(5) == 0
