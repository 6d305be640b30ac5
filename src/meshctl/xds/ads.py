"""The gRPC face of ADS: one task per stream, fed by one inbox (inbox.py).

A stream has two sources of work: requests from the proxy and config changes from the server.
Both go into one inbox (a reader task puts requests, the snapshot cache puts change notices),
and the stream's task handles them one at a time, so state is never touched concurrently and no
request is ever lost to a race between two awaits.

Requests arrive and responses leave as bytes: the reader decodes each request with its names
(limits.read), and streams hand over responses already serialized (see encoding.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message

from meshctl.errors import GenerationError, UnknownProxyError
from meshctl.xds.admission import DEFAULT_MAX_CONNECTIONS, Admission
from meshctl.xds.cache import CHANGED, CLOSE, NotReadyError, SnapshotCache
from meshctl.xds.limits import LARGE_BYTES, Names, RequestRefused, read
from meshctl.xds.identity import with_peer_identity
from meshctl.xds.inbox import Inbox
from meshctl.xds.stream import DeltaStream, Push, RefusedNodeError, SotwStream, Stream

__all__ = [
    "AdsServicer",
    "LARGE_NAMES",
    "PAUSE",
    "SECRET_SERVICE",
    "SERVICE",
    "peer_identity",
    "register",
    "register_secrets",
]

log = logging.getLogger("meshctl.xds")
SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
SECRET_SERVICE = "envoy.service.secret.v3.SecretDiscoveryService"

# Requests naming more than LARGE_NAMES resources are answered one at a time, with PAUSE after
# each for everyone else.
LARGE_NAMES = 10_000
PAUSE = 0.005


class _Call:
    """One ADS call: turns each queued event into the responses it needs and writes them.

    Events are handled in methods, never bound in the loop that waits for the next one: a
    stream spends most of its life waiting, and must not hold its last request and response
    (a full CDS or RDS response can be hundreds of KB) meanwhile.
    """

    def __init__(self, cache: SnapshotCache, kind: type[Stream], context: grpc.aio.ServicerContext,
                 queue: Inbox[Any], large: asyncio.Lock) -> None:
        self.cache = cache
        self.kind = kind
        self.context = context
        self.queue = queue
        self.large = large
        self.stream: Stream | None = None

    async def handle(self, event: Any) -> bool:
        """Answer one event; False once the stream is over. A change notice, and a request
        answered with nothing (an ACK, mostly), await no more than they must: once each per
        proxy and change, every coroutine counts."""
        if event is CLOSE:
            return False
        if event is CHANGED:
            assert self.stream is not None
            pushes = self.stream.on_config()
        elif isinstance(event[1], Names) and event[1].size > LARGE_NAMES:
            async with self.large:
                await self._write(await self._pushes(event))
                await asyncio.sleep(PAUSE)
            return True
        else:
            pushes = await self._pushes(event)
        if pushes:
            await self._write(pushes)
        return True

    async def _pushes(self, event: Any) -> list[Push]:
        request, names = event
        if isinstance(names, RequestRefused):
            await self._refuse(names)
        if self.stream is None:
            if not request.HasField("node"):
                await self.context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first request of a stream must carry the node")
            node = with_peer_identity(request.node, peer_identity(self.context))
            self.stream = self.kind(self.cache, node, self.context.peer())
            self.cache.register(self.stream, self.queue)
        try:
            return self.stream.on_request(request, names)
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
        except GenerationError as exc:  # a debug question about a proxy whose config fails
            await self.context.abort(grpc.StatusCode.INTERNAL, "; ".join([str(exc), *exc.culprits]))
            raise
        except RequestRefused as exc:
            await self._refuse(exc)
            raise

    async def _refuse(self, refusal: RequestRefused) -> None:
        """End the stream over a request beyond the limits (or not a request at all)."""
        node = self.stream.node.id if self.stream is not None else ""
        log.warning("request refused: %s", refusal, extra={"peer": self.context.peer(), "node": node})
        await self.context.abort(grpc.StatusCode[refusal.status], f"{refusal} (see meshctl serve's limits)")

    async def _write(self, pushes: list[Push]) -> None:
        for push in pushes:
            assert self.stream is not None
            await self.context.write(push.payload)
            self.cache.record(push, self.stream.mode)


def peer_identity(context: grpc.aio.ServicerContext) -> str:
    """The SPIFFE id the caller's client certificate proves (mutual TLS), else ""."""
    values = (context.auth_context() or {}).get("peer_spiffe_id") or ()
    return values[0].decode() if values else ""


class AdsServicer:
    """Both ADS variants over the same snapshot cache.

    Reading a request costs time in proportion to its size, and anyone who reaches the port
    can send one of 4 MiB: a large request's names are read slice by slice (limits.read), and
    large requests are answered one at a time with a pause after each, so the event loop keeps
    serving pushes and `/ready` meanwhile (see limits.py).
    """

    def __init__(self, cache: SnapshotCache, admission: Admission | None = None) -> None:
        self.cache = cache
        self.admission = admission or Admission(DEFAULT_MAX_CONNECTIONS, cache.metrics)
        self.large = asyncio.Lock()

    async def StreamAggregatedResources(self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:  # noqa: N802 (gRPC's name)
        await self._serve(SotwStream, discovery_pb2.DiscoveryRequest, request_iterator, context)

    async def DeltaAggregatedResources(self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:  # noqa: N802
        await self._serve(DeltaStream, discovery_pb2.DeltaDiscoveryRequest, request_iterator, context)

    async def _read(self, requests: AsyncIterator[bytes], queue: Inbox[Any], message: type[Message]) -> None:
        """Decode each request with its names (see limits.read); large ones one at a time."""
        try:
            async for raw in requests:
                if len(raw) < LARGE_BYTES:
                    queue.put(await read(message, raw))
                    continue
                async with self.large:
                    queue.put(await read(message, raw))
                    await asyncio.sleep(PAUSE)
        except grpc.aio.AioRpcError as exc:
            log.debug("stream read ended: %s", exc.code())
        finally:
            queue.put(CLOSE)

    async def _serve(self, kind: type[Stream], message: type[Message], requests: AsyncIterator[bytes],
                     context: grpc.aio.ServicerContext) -> None:
        async with self.admission.admitted(context, "ADS"):
            await self._stream(kind, message, requests, context)

    async def _stream(self, kind: type[Stream], message: type[Message], requests: AsyncIterator[bytes],
                      context: grpc.aio.ServicerContext) -> None:
        queue: Inbox[Any] = Inbox()
        reader = asyncio.create_task(self._read(requests, queue, message))
        call = _Call(self.cache, kind, context, queue, self.large)
        try:
            while await call.handle(await queue.get()):
                pass
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # a bug must end this stream alone, said plainly
            node = call.stream.node.id if call.stream is not None else ""
            log.error("stream ended by an internal error: %s: %s", type(exc).__name__, exc, extra={"node": node})
            log.debug("internal error", exc_info=True, extra={"node": node})
            await context.abort(grpc.StatusCode.INTERNAL, f"meshctl serve failed on this stream: {type(exc).__name__}")
        finally:
            reader.cancel()
            if call.stream is not None:
                self.cache.unregister(call.stream)


def register(server: grpc.aio.Server, servicer: AdsServicer) -> None:
    """Add ADS to `server`, taking requests and giving responses as bytes (requests are decoded
    by the stream's reader, see limits.read)."""
    _add(server, SERVICE, "StreamAggregatedResources", "DeltaAggregatedResources", servicer)


def register_secrets(server: grpc.aio.Server, servicer: AdsServicer) -> None:
    """Add SDS to `server`: the same two stream variants under the Secret Discovery Service's
    names. A node agent serves its Envoy's secrets this way, from a cache of its own."""
    _add(server, SECRET_SERVICE, "StreamSecrets", "DeltaSecrets", servicer)


def _add(server: grpc.aio.Server, service: str, sotw: str, delta: str, servicer: AdsServicer) -> None:
    handlers = {
        sotw: grpc.stream_stream_rpc_method_handler(servicer.StreamAggregatedResources),
        delta: grpc.stream_stream_rpc_method_handler(servicer.DeltaAggregatedResources),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)
