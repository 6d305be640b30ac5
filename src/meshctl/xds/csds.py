"""Envoy's Client Status Discovery Service, answered from the same state as syncz.

Tools that speak CSDS (Envoy's own tooling, grpcdebug) can ask serve what each proxy holds and
whether it is in sync, without knowing Istio's debug type URLs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

import grpc
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from envoy.type.matcher.v3 import node_pb2, string_pb2

from meshctl.xds.cache import SnapshotCache
from meshctl.xds.status import client_config
from meshctl.xds.stream import Stream


def _string_matches(matcher: string_pb2.StringMatcher, value: str) -> bool:
    kind = matcher.WhichOneof("match_pattern")
    if kind is None:
        return True
    if matcher.ignore_case and kind in ("exact", "prefix", "suffix", "contains"):
        value, pattern = value.lower(), getattr(matcher, kind).lower()
    else:
        pattern = getattr(matcher, kind) if kind != "safe_regex" else matcher.safe_regex.regex
    if kind == "exact":
        return value == pattern
    if kind == "prefix":
        return value.startswith(pattern)
    if kind == "suffix":
        return value.endswith(pattern)
    if kind == "contains":
        return pattern in value
    if kind == "safe_regex":
        return re.fullmatch(pattern, value) is not None
    return False


def _selected(stream: Stream, matchers: Sequence[node_pb2.NodeMatcher]) -> bool:
    """A proxy is selected by a matcher on its Envoy node id or on its `POD.NS` id."""
    if not matchers:
        return True
    return any(
        not matcher.HasField("node_id")
        or _string_matches(matcher.node_id, stream.node.id)
        or _string_matches(matcher.node_id, stream.proxy_id)
        for matcher in matchers
    )


class CsdsServicer(csds_pb2_grpc.ClientStatusDiscoveryServiceServicer):
    def __init__(self, cache: SnapshotCache) -> None:
        self.cache = cache

    def _answer(self, request: csds_pb2.ClientStatusRequest) -> csds_pb2.ClientStatusResponse:
        chosen = [s for s in self.cache.proxies() if _selected(s, request.node_matchers)]
        return csds_pb2.ClientStatusResponse(config=[client_config(s) for s in chosen])

    async def StreamClientStatus(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[csds_pb2.ClientStatusRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[csds_pb2.ClientStatusResponse]:
        async for request in request_iterator:
            yield self._answer(request)

    async def FetchClientStatus(  # noqa: N802
        self, request: csds_pb2.ClientStatusRequest, context: grpc.aio.ServicerContext
    ) -> csds_pb2.ClientStatusResponse:
        return self._answer(request)
