"""Simulated proxies for serve_fanout: many SotW ADS clients in one process, each on its own
gRPC channel (and so its own TCP connection), subscribing and ACKing like Envoy does.

Each client sends a wildcard CDS request with its node; on clusters it asks for the endpoints of
its EDS clusters and then for listeners; on listeners it asks for the routes their HTTP
connection managers name; it ACKs every response at once with the response's version and nonce
and its current subscription. Resource names are read from the first response of each version
only (versions are content hashes, so equal versions carry equal names): the clients must cost
little, it is the server that is measured.

Run by serve_fanout.py as `python ads_clients.py NODES_JSON PORT`; NODES_JSON lists
`{"id": ..., "metadata": {...}}` per client. Commands on stdin, one JSON line answered on stdout:

- (at start, unasked) `{"synced": n, "seconds": s}` once every client has ACKed all four types;
- `mark`: forget the receive times so far → `{"marked": n}`;
- `wait`: once every client received and ACKed something after the mark, and nothing came for
  0.3 s more → `{"acked": {node id: wall time of its last ACK}, "responses": n}`.

Anything that does not happen within two minutes is answered with `{"error": ...}`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format

from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, type_url_of

HCM = type_url_of(http_connection_manager_pb2.HttpConnectionManager)
QUIET = 0.3
TIMEOUT = 120.0

_names: dict[tuple[str, str], list[str]] = {}


def _eds_names(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    names = []
    for packed in response.resources:
        cluster = cluster_pb2.Cluster.FromString(packed.value)
        if cluster.type == cluster_pb2.Cluster.EDS:
            names.append(cluster.eds_cluster_config.service_name or cluster.name)
    return names


def _route_names(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    names = set()
    for packed in response.resources:
        listener = listener_pb2.Listener.FromString(packed.value)
        chains = [*listener.filter_chains, listener.default_filter_chain]
        for item in (f for chain in chains for f in chain.filters):
            if item.typed_config.type_url == HCM:
                manager = http_connection_manager_pb2.HttpConnectionManager.FromString(item.typed_config.value)
                if manager.HasField("rds"):
                    names.add(manager.rds.route_config_name)
    return sorted(names)


def names_in(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    """The EDS or RDS names a CDS or LDS response makes Envoy ask for (cached per version)."""
    key = (response.type_url, response.version_info)
    if key not in _names:
        _names[key] = _eds_names(response) if response.type_url == CLUSTER else _route_names(response)
    return _names[key]


class Client:
    """One simulated proxy: its stream, its subscriptions, what it ACKed and when."""

    def __init__(self, node: dict[str, Any], target: str, fleet: Fleet) -> None:
        self.node = json_format.ParseDict(node, base_pb2.Node())
        self.channel = grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1),
                                                                  ("grpc.max_receive_message_length", 1 << 30)])
        self.fleet = fleet
        self.subscribed: dict[str, list[str]] = {CLUSTER: [], LISTENER: []}
        self.acked: set[str] = set()
        self.last_ack = 0.0

    async def run(self) -> None:
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel).StreamAggregatedResources()
        first = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
        first.node.CopyFrom(self.node)
        await call.write(first)
        async for response in call:
            for request in self.answer(response):
                await call.write(request)
            self.last_ack = time.time()
            self.acked.add(response.type_url)
            self.fleet.received(self)

    def answer(self, response: discovery_pb2.DiscoveryResponse) -> list[discovery_pb2.DiscoveryRequest]:
        """What Envoy sends back: new subscriptions the response implies, then the ACK."""
        out = []
        if response.type_url in (CLUSTER, LISTENER):
            dependent = ENDPOINT if response.type_url == CLUSTER else ROUTE
            names = names_in(response)
            if self.subscribed.get(dependent) != names:
                self.subscribed[dependent] = names
                out.append(discovery_pb2.DiscoveryRequest(type_url=dependent, resource_names=names))
        out.append(discovery_pb2.DiscoveryRequest(type_url=response.type_url, version_info=response.version_info,
                                                  response_nonce=response.nonce,
                                                  resource_names=self.subscribed.get(response.type_url, [])))
        if response.type_url == CLUSTER and not self.acked:
            out.append(discovery_pb2.DiscoveryRequest(type_url=LISTENER))
        return out


class Fleet:
    def __init__(self, nodes: Sequence[dict[str, Any]], target: str) -> None:
        self.clients = [Client(node, target, self) for node in nodes]
        self.since_mark: set[Client] = set()
        self.responses = 0
        self.last_response = 0.0
        self.changed = asyncio.Event()

    def received(self, client: Client) -> None:
        self.since_mark.add(client)
        self.responses += 1
        self.last_response = time.monotonic()
        self.changed.set()

    async def until(self, done: Any) -> None:
        while not done():
            self.changed.clear()
            await self.changed.wait()

    async def settled(self) -> None:
        """Every client answered since the mark, then QUIET seconds without a response."""
        await self.until(lambda: len(self.since_mark) == len(self.clients))
        while (left := self.last_response + QUIET - time.monotonic()) > 0:
            await asyncio.sleep(left)


def emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def main(nodes_file: str, port: int) -> None:
    with open(nodes_file) as handle:
        nodes = json.load(handle)
    fleet = Fleet(nodes, f"127.0.0.1:{port}")
    started = time.monotonic()
    tasks = [asyncio.create_task(client.run()) for client in fleet.clients]
    try:
        await asyncio.wait_for(fleet.until(lambda: all(len(c.acked) == 4 for c in fleet.clients)), TIMEOUT)
    except TimeoutError:
        emit({"error": f"{sum(len(c.acked) < 4 for c in fleet.clients)} clients not synced in {TIMEOUT} s"})
        return
    await fleet.settled()
    emit({"synced": len(fleet.clients), "seconds": time.monotonic() - started})
    commands = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    while line := (await commands.readline()).decode().strip():
        if line == "mark":
            fleet.since_mark.clear()
            fleet.responses = 0
            emit({"marked": len(fleet.clients)})
        elif line == "wait":
            try:
                await asyncio.wait_for(fleet.settled(), TIMEOUT)
            except TimeoutError:
                emit({"error": f"{len(fleet.clients) - len(fleet.since_mark)} clients got nothing in {TIMEOUT} s"})
                continue
            emit({"acked": {c.node.id: c.last_ack for c in fleet.clients}, "responses": fleet.responses})
    for task in tasks:
        task.cancel()
    for client in fleet.clients:
        await client.channel.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
