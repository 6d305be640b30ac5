"""Envoy's Client Status Discovery Service, answered from the same state as syncz.

Tools that speak CSDS (Envoy's own tooling, grpcdebug) can ask serve what each proxy holds and
whether it is in sync, without knowing Istio's debug type URLs. A request's matchers are
compiled once (bounded, RE2: see matchers.py) and the proxies are matched and answered in slices,
yielding to the event loop in between, so that no request holds up pushes or `/ready`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc

from meshctl.xds.admission import Admission
from meshctl.xds.cache import SnapshotCache
from meshctl.xds.matchers import MatcherError, node_matchers
from meshctl.xds.status import client_config

__all__ = ["CsdsServicer", "SLICE"]

# Proxies matched and described between two yields to the event loop.
SLICE = 64


class CsdsServicer(csds_pb2_grpc.ClientStatusDiscoveryServiceServicer):  # type: ignore[misc]  # generated, untyped
    def __init__(self, cache: SnapshotCache, admission: Admission) -> None:
        self.cache = cache
        self.admission = admission

    async def _answer(self, request: csds_pb2.ClientStatusRequest, context: grpc.aio.ServicerContext
                      ) -> csds_pb2.ClientStatusResponse:
        try:
            chosen = node_matchers(request.node_matchers)
        except MatcherError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"node_matchers: {exc}")
        response = csds_pb2.ClientStatusResponse()
        proxies = self.cache.proxies()
        for start in range(0, len(proxies), SLICE):
            if start:
                await asyncio.sleep(0)
            for stream in proxies[start:start + SLICE]:
                if chosen(stream.node, stream.proxy_id):
                    response.config.append(client_config(stream))
        return response

    async def StreamClientStatus(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[csds_pb2.ClientStatusRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[csds_pb2.ClientStatusResponse]:
        async with self.admission.admitted(context, "CSDS"):
            async for request in request_iterator:
                yield await self._answer(request, context)

    async def FetchClientStatus(  # noqa: N802
        self, request: csds_pb2.ClientStatusRequest, context: grpc.aio.ServicerContext
    ) -> csds_pb2.ClientStatusResponse:
        async with self.admission.admitted(context, "CSDS"):
            return await self._answer(request, context)
