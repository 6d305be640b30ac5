"""The gRPC face of ADS: one task per stream, fed by one queue.

A stream has two sources of work: requests from the proxy and config changes from the server.
Both go into one queue (a reader task puts requests, the hub puts change notices), and the
stream's task handles them one at a time, so state is never touched concurrently and no request
is ever lost to a race between two awaits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc

from meshctl.xds.hub import CHANGED, CLOSE, Hub
from meshctl.xds.node import InvalidNodeError
from meshctl.xds.stream import DeltaStream, SotwStream, Stream

log = logging.getLogger("meshctl.xds")


async def _read(requests: AsyncIterator[Any], queue: asyncio.Queue[Any]) -> None:
    try:
        async for request in requests:
            queue.put_nowait(request)
    except grpc.aio.AioRpcError as exc:
        log.debug("stream read ended: %s", exc.code())
    finally:
        queue.put_nowait(CLOSE)


class AdsServicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """Both ADS variants over the same hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def StreamAggregatedResources(self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:  # noqa: N802 (gRPC's name)
        await self._serve(SotwStream, request_iterator, context)

    async def DeltaAggregatedResources(self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:  # noqa: N802
        await self._serve(DeltaStream, request_iterator, context)

    async def _serve(self, kind: type[Stream], requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        reader = asyncio.create_task(_read(requests, queue))
        stream: Stream | None = None
        try:
            while True:
                event = await queue.get()
                if event is CLOSE:
                    return
                if event is CHANGED:
                    assert stream is not None
                    pushes = stream.on_config()
                else:
                    if stream is None:
                        if not event.HasField("node"):
                            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first request of a stream must carry the node")
                        stream = kind(self.hub, event.node, context.peer())
                        self.hub.register(stream, queue)
                    try:
                        pushes = stream.on_request(event)
                    except InvalidNodeError as exc:
                        log.warning("refused node: %s", exc, extra={"peer": context.peer()})
                        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                for push in pushes:
                    await context.write(push.message)
                    self.hub.record(push, stream.mode)
        finally:
            reader.cancel()
            if stream is not None:
                self.hub.unregister(stream)
