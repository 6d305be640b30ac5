"""The gRPC face of ADS: one task per stream, fed by one queue.

A stream has two sources of work: requests from the proxy and config changes from the server.
Both go into one queue (a reader task puts requests, the snapshot cache puts change notices),
and the stream's task handles them one at a time, so state is never touched concurrently and no
request is ever lost to a race between two awaits.

Streams hand over responses already serialized (see encoding.py), so the handlers are registered
without a response serializer and the bytes go to gRPC as they are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from meshctl.errors import UnknownProxyError
from meshctl.xds.cache import CHANGED, CLOSE, NotReadyError, SnapshotCache
from meshctl.xds.stream import DeltaStream, Push, RefusedNodeError, SotwStream, Stream

log = logging.getLogger("meshctl.xds")
SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
SECRET_SERVICE = "envoy.service.secret.v3.SecretDiscoveryService"


async def _read(requests: AsyncIterator[Any], queue: asyncio.Queue[Any]) -> None:
    try:
        async for request in requests:
            queue.put_nowait(request)
    except grpc.aio.AioRpcError as exc:
        log.debug("stream read ended: %s", exc.code())
    finally:
        queue.put_nowait(CLOSE)


class _Call:
    """One ADS call: turns each queued event into the responses it needs and writes them.

    Events are handled in methods, never bound in the loop that waits for the next one: a
    stream spends most of its life waiting, and must not hold its last request and response
    (a full CDS or RDS response can be hundreds of KB) meanwhile.
    """

    def __init__(self, cache: SnapshotCache, kind: type[Stream], context: grpc.aio.ServicerContext,
                 queue: asyncio.Queue[Any]) -> None:
        self.cache = cache
        self.kind = kind
        self.context = context
        self.queue = queue
        self.stream: Stream | None = None

    async def handle(self, event: Any) -> bool:
        """Answer one event; False once the stream is over."""
        if event is CLOSE:
            return False
        await self._write(await self._pushes(event))
        return True

    async def _pushes(self, event: Any) -> list[Push]:
        if event is CHANGED:
            assert self.stream is not None
            return self.stream.on_config()
        if self.stream is None:
            if not event.HasField("node"):
                await self.context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first request of a stream must carry the node")
            self.stream = self.kind(self.cache, event.node, self.context.peer())
            self.cache.register(self.stream, self.queue)
        try:
            return self.stream.on_request(event)
        except RefusedNodeError as exc:
            log.warning("refused node: %s", exc, extra={"peer": self.context.peer()})
            await self.context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        except UnknownProxyError as exc:  # a debug question about a proxy nobody knows
            await self.context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise
        except NotReadyError as exc:
            await self.context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise

    async def _write(self, pushes: list[Push]) -> None:
        for push in pushes:
            assert self.stream is not None
            await self.context.write(push.payload)
            self.cache.record(push, self.stream.mode)


class AdsServicer:
    """Both ADS variants over the same snapshot cache."""

    def __init__(self, cache: SnapshotCache) -> None:
        self.cache = cache

    async def StreamAggregatedResources(self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:  # noqa: N802 (gRPC's name)
        await self._serve(SotwStream, request_iterator, context)

    async def DeltaAggregatedResources(self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:  # noqa: N802
        await self._serve(DeltaStream, request_iterator, context)

    async def _serve(self, kind: type[Stream], requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        reader = asyncio.create_task(_read(requests, queue))
        call = _Call(self.cache, kind, context, queue)
        try:
            while await call.handle(await queue.get()):
                pass
        finally:
            reader.cancel()
            if call.stream is not None:
                self.cache.unregister(call.stream)


def register(server: grpc.aio.Server, servicer: AdsServicer) -> None:
    """Add ADS to `server`, taking requests as messages and responses as serialized bytes."""
    _add(server, SERVICE, "StreamAggregatedResources", "DeltaAggregatedResources", servicer)


def register_secrets(server: grpc.aio.Server, servicer: AdsServicer) -> None:
    """Add SDS to `server`: the same two stream variants under the Secret Discovery Service's
    names. A node agent serves its Envoy's secrets this way, from a cache of its own."""
    _add(server, SECRET_SERVICE, "StreamSecrets", "DeltaSecrets", servicer)


def _add(server: grpc.aio.Server, service: str, sotw: str, delta: str, servicer: AdsServicer) -> None:
    handlers = {
        sotw: grpc.stream_stream_rpc_method_handler(
            servicer.StreamAggregatedResources, request_deserializer=discovery_pb2.DiscoveryRequest.FromString),
        delta: grpc.stream_stream_rpc_method_handler(
            servicer.DeltaAggregatedResources, request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)
