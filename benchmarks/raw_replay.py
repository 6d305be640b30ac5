"""A raw-replay ADS server: the floor `meshctl serve` is compared with in serve_convergence (b).

It knows nothing about Istio or translation. It is handed, per node, every resource of a few
configuration generations (packed `Any` bytes, as serve's translator produced them) and turns
each (generation, type) into one pre-serialized SotW DiscoveryResponse body; sending one costs
a few bytes of nonce appended to that body (protobuf fields may come in any order). So the time
it takes the same Envoys to converge on the same change is what Envoy and gRPC need, with
almost no control plane in between.

Run by serve_convergence.py as `python raw_replay.py RECORDING PORT`, RECORDING being a pickle of
`{"generations": [Generation, ...]}`. Commands on stdin,
one per line, each answered by one JSON line on stdout:

- `synced N`: once N streams have ACKed every type they asked for → `{"synced": N}`;
- `bump`: push the next generation (CDS in full, EDS for the clusters that changed, LDS and RDS
  if they changed) to every stream → `{"ms": {node id: bump → last ACK in ms}, "nacks": n}`.

A command not done within a minute is answered with `{"error": ...}`.

The Envoys take their certificates from the SDS sockets of the benchmark's EnvoyFleet, as in
the serve run, so this server answers ADS only.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import pickle
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshctl.xds import encoding

PUSH_ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
TIMEOUT = 60.0

Generation = Mapping[str, Mapping[str, Sequence[tuple[str, bytes]]]]
"""node id → type URL → (name, packed Any bytes) of every resource the node holds."""


def _field(number: int, payload: bytes) -> bytes:
    return encoding.field(encoding.varint(number << 3 | 2), payload)


def response_body(version: str, type_url: str, resources: Sequence[bytes]) -> bytes:
    """A DiscoveryResponse without its nonce (fields 1, 2 and 4)."""
    return _field(1, version.encode()) + b"".join(_field(2, r) for r in resources) + _field(4, type_url.encode())


def with_nonce(body: bytes, nonce: str) -> bytes:
    return body + _field(5, nonce.encode())


@dataclass
class Replay:
    """Pre-serialized bodies: `full[g][node][type]` answers a request in generation g;
    `bump[g][node]` lists, in push order, the bodies that move a node to generation g from the
    one before it (generations cycle, so the last is followed by the first)."""

    full: list[dict[str, dict[str, bytes]]]
    bump: list[dict[str, list[tuple[str, bytes]]]]

    @classmethod
    def build(cls, generations: Sequence[Generation]) -> Replay:
        bodies: dict[tuple[Any, ...], bytes] = {}

        def body(version: str, type_url: str, resources: Sequence[bytes]) -> bytes:
            # Nodes holding the very same resources (a recording shares their bytes) share one body.
            key = (version, type_url, *map(id, resources))
            if key not in bodies:
                bodies[key] = response_body(version, type_url, resources)
            return bodies[key]

        full = [{node: {t: body(f"g{g}", t, [r for _, r in items]) for t, items in types.items()}
                 for node, types in generation.items()} for g, generation in enumerate(generations)]
        bump = []
        for g, generation in enumerate(generations):
            step: dict[str, list[tuple[str, bytes]]] = {}
            for node, types in generation.items():
                before = {t: dict(items) for t, items in generations[g - 1][node].items()}
                now = {t: dict(items) for t, items in types.items()}
                changed = {n for n, value in now.get(CLUSTER, {}).items() if before.get(CLUSTER, {}).get(n) != value}
                step[node] = []
                for type_url in PUSH_ORDER:
                    if type_url == ENDPOINT:
                        old = before.get(ENDPOINT, {})
                        resent = [r for n, r in now.get(ENDPOINT, {}).items() if n in changed or old.get(n) != r]
                        if resent:
                            step[node].append((type_url, body(f"g{g}", type_url, resent)))
                    elif now.get(type_url, {}) != before.get(type_url, {}):
                        step[node].append((type_url, full[g][node][type_url]))
            bump.append(step)
        return cls(full, bump)


_BUMP = object()
_END = object()


@dataclass(eq=False)
class _Stream:
    node: str = ""
    sent: dict[str, str] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    awaiting: set[str] = field(default_factory=set)


class ReplayServer:
    """SotW ADS over pre-serialized bodies, with the bump bookkeeping."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.generation = 0
        self.streams: dict[_Stream, asyncio.Queue[Any]] = {}
        self.nonces = itertools.count(1)
        self.bump_started = 0.0
        self.done: dict[str, float] = {}
        self.nacks = 0
        self.changed = asyncio.Event()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        ads = grpc.stream_stream_rpc_method_handler(self.ads, discovery_pb2.DiscoveryRequest.FromString)
        return [grpc.method_handlers_generic_handler("envoy.service.discovery.v3.AggregatedDiscoveryService",
                                                     {"StreamAggregatedResources": ads})]

    async def ads(self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest], context: Any) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        reader = asyncio.create_task(_pump(requests, queue))
        stream = _Stream()
        self.streams[stream] = queue
        try:
            while (event := await queue.get()) is not _END:
                await self._write(context, self._bump(stream) if event is _BUMP else self._answer(stream, event))
        finally:
            reader.cancel()
            del self.streams[stream]

    @staticmethod
    async def _write(context: Any, payloads: list[bytes]) -> None:
        """Write in a call of its own, so that no stream holds its last response (its own copy,
        nonce appended: a full CDS body is tens of KB) while it waits for the next event, as
        serve's streams do not (xds/ads.py)."""
        for payload in payloads:
            await context.write(payload)

    def _answer(self, stream: _Stream, request: discovery_pb2.DiscoveryRequest) -> list[bytes]:
        if request.node.id:
            stream.node = request.node.id
        type_url, nonce = request.type_url, request.response_nonce
        if nonce:
            if nonce == stream.sent.get(type_url):
                self._reply(stream, type_url, nonce, request.HasField("error_detail"))
            return []
        body = self.replay.full[self.generation][stream.node].get(type_url)
        return [self._send(stream, type_url, body)] if body is not None else []

    def _send(self, stream: _Stream, type_url: str, body: bytes) -> bytes:
        nonce = str(next(self.nonces))
        stream.sent[type_url] = nonce
        return with_nonce(body, nonce)

    def _reply(self, stream: _Stream, type_url: str, nonce: str, nack: bool) -> None:
        self.nacks += nack
        stream.acked.add(type_url)
        if nonce in stream.awaiting:
            stream.awaiting.discard(nonce)
            if not stream.awaiting:
                self.done[stream.node] = time.monotonic()
        self.changed.set()

    def _bump(self, stream: _Stream) -> list[bytes]:
        out = [self._send(stream, type_url, body) for type_url, body in self.replay.bump[self.generation][stream.node]]
        stream.awaiting.update(stream.sent[type_url] for type_url, _ in self.replay.bump[self.generation][stream.node])
        if not out:
            self.done[stream.node] = time.monotonic()
            self.changed.set()
        return out

    async def wait(self, check: Any) -> None:
        async def until() -> None:
            while not check():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), TIMEOUT)

    async def command(self, line: str) -> dict[str, Any]:
        verb, _, argument = line.partition(" ")
        if verb == "synced":
            wanted = int(argument)
            await self.wait(lambda: sum(1 for s in self.streams if len(s.acked) == len(PUSH_ORDER)) >= wanted)
            return {"synced": wanted}
        if verb == "bump":
            self.generation = (self.generation + 1) % len(self.replay.full)
            self.done.clear()
            self.nacks = 0
            self.bump_started = time.monotonic()
            for queue in self.streams.values():
                queue.put_nowait(_BUMP)
            await self.wait(lambda: len(self.done) == len(self.streams))
            return {"ms": {node: (at - self.bump_started) * 1e3 for node, at in self.done.items()}, "nacks": self.nacks}
        return {"error": f"unknown command {line!r}"}


async def _pump(requests: AsyncIterator[Any], queue: asyncio.Queue[Any]) -> None:
    try:
        async for request in requests:
            queue.put_nowait(request)
    finally:
        queue.put_nowait(_END)


async def serve(replay: Replay, port: int) -> None:
    # serve's settings that bear on the cost of a push (see xds/server.py), so that the floor
    # measures what serve's own work adds to the same gRPC.
    server = grpc.aio.server(options=[("grpc.max_send_message_length", 256 * 1024 * 1024), ("grpc.http2.bdp_probe", 0)])
    replaying = ReplayServer(replay)
    server.add_generic_rpc_handlers(replaying.handlers())
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    print(json.dumps({"listening": port}), flush=True)
    while line := (await commands.readline()).decode().strip():
        try:
            answer = await replaying.command(line)
        except TimeoutError:
            answer = {"error": f"{line!r} not done after {TIMEOUT} s"}
        print(json.dumps(answer), flush=True)
    await server.stop(0.5)


def main(argv: Sequence[str]) -> None:
    with open(argv[0], "rb") as handle:
        recorded = pickle.load(handle)
    asyncio.run(serve(Replay.build(recorded["generations"]), int(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
