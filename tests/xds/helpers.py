"""An in-process control plane fed from memory, and a scriptable ADS client (SotW and Delta)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy_harness import node_id
from google.protobuf import struct_pb2
from google.rpc import status_pb2

import fake_mesh
from meshctl.model.node import ISTIO_NODES
from meshctl.sources.base import Rejection, SourceUpdate
from meshctl.xds.server import XdsServer

PROXY_METADATA = {"NAMESPACE": "default", "ISTIO_VERSION": "1.27.0", "CLUSTER_ID": "Kubernetes", "PROXY_CONFIG": {}}


async def eventually(check: Callable[[], Any], timeout: float = 3.0, what: str = "condition") -> Any:
    """Poll `check` without blocking the event loop the server runs on."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.01)


class MemorySource:
    """A ConfigSource whose updates the test hands in."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SourceUpdate] = asyncio.Queue()

    def push(self, documents: Sequence[Mapping[str, Any]], rejected: Iterable[Rejection] = ()) -> None:
        self.queue.put_nowait(SourceUpdate(fake_mesh.as_resources(documents), tuple(rejected)))

    async def updates(self) -> AsyncIterator[SourceUpdate]:
        while True:
            yield await self.queue.get()


class Plane:
    """A running XdsServer with a memory source, plus ways to reach it."""

    def __init__(self) -> None:
        self.source = MemorySource()
        self.server = XdsServer("127.0.0.1:0", "127.0.0.1:0", ISTIO_NODES)
        self.channels: list[grpc.aio.Channel] = []

    @property
    def cache(self) -> Any:
        return self.server.cache

    async def start(self) -> None:
        await self.server.start()
        self.server.feed(self.source, fake_mesh.translate)

    async def stop(self) -> None:
        for channel in self.channels:
            await channel.close()
        await self.server.stop(grace=0.5)

    async def load(self, documents: Sequence[Mapping[str, Any]], rejected: Iterable[Rejection] = ()) -> None:
        """Hand in a config and wait until the server has taken it."""
        before = (self.cache.accepted, self.cache.rejected)
        self.source.push(documents, rejected)
        for _ in range(200):
            await asyncio.sleep(0.005)
            if self.source.queue.empty() and (self.cache.accepted, self.cache.rejected) != before:
                return
        if not self.source.queue.empty():
            raise AssertionError("the server did not take the update")

    def channel(self) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.server.xds_port}")
        self.channels.append(channel)
        return channel

    def sotw(self, pod: str = "web", metadata: Mapping[str, Any] | None = None) -> SotwClient:
        return SotwClient(self.channel(), node_id(pod), PROXY_METADATA if metadata is None else metadata)

    def delta(self, pod: str = "web") -> DeltaClient:
        return DeltaClient(self.channel(), node_id(pod), PROXY_METADATA)


class _Client:
    """Reads on a task of its own: cancelling a pending `read()` would cancel the whole call."""

    def __init__(self, channel: grpc.aio.Channel, node: str, metadata: Mapping[str, Any]) -> None:
        self.stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        self.node_id = node
        self.metadata = struct_pb2.Struct()
        self.metadata.update(dict(metadata))
        self.call: Any = None
        self.received: asyncio.Queue[Any] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    def _start(self, call: Any) -> None:
        self.call = call
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                message = await self.call.read()
                if message is grpc.aio.EOF:
                    return
                self.received.put_nowait(message)
        except grpc.aio.AioRpcError as exc:
            self.received.put_nowait(exc)
        except asyncio.CancelledError:
            pass

    async def recv(self, timeout: float = 3.0) -> Any:
        message = await asyncio.wait_for(self.received.get(), timeout)
        if isinstance(message, Exception):
            raise message
        return message

    def close(self) -> None:
        self.call.cancel()


class SotwClient(_Client):
    def __init__(self, channel: grpc.aio.Channel, node: str, metadata: Mapping[str, Any]) -> None:
        super().__init__(channel, node, metadata)
        self._start(self.stub.StreamAggregatedResources())

    async def send(self, type_url: str, names: Iterable[str] = (), version: str = "", nonce: str = "",
                   error: str = "") -> None:
        request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names), version_info=version,
                                                 response_nonce=nonce)
        request.node.id = self.node_id
        request.node.metadata.CopyFrom(self.metadata)
        if error:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.call.write(request)

    async def ack(self, response: discovery_pb2.DiscoveryResponse, names: Iterable[str] = ()) -> None:
        await self.send(response.type_url, names, response.version_info, response.nonce)

    async def nack(self, response: discovery_pb2.DiscoveryResponse, message: str, names: Iterable[str] = (),
                   version: str = "") -> None:
        await self.send(response.type_url, names, version, response.nonce, error=message)


class DeltaClient(_Client):
    def __init__(self, channel: grpc.aio.Channel, node: str, metadata: Mapping[str, Any]) -> None:
        super().__init__(channel, node, metadata)
        self._start(self.stub.DeltaAggregatedResources())

    async def send(self, type_url: str, subscribe: Iterable[str] = (), unsubscribe: Iterable[str] = (),
                   nonce: str = "", error: str = "", initial: Mapping[str, str] | None = None) -> None:
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url, resource_names_subscribe=list(subscribe), resource_names_unsubscribe=list(unsubscribe),
            response_nonce=nonce, initial_resource_versions=dict(initial or {}),
        )
        request.node.id = self.node_id
        request.node.metadata.CopyFrom(self.metadata)
        if error:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.call.write(request)

    async def ack(self, response: discovery_pb2.DeltaDiscoveryResponse) -> None:
        await self.send(response.type_url, nonce=response.nonce)
