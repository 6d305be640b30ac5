"""serve's own push cost, without gRPC: `python benchmarks/push_cost.py [--proxies N ...] [--profile]`.

The real SnapshotCache and Translator in this process, with N SotW streams (default 10, 100 and
1,000) that subscribe as Envoy does (CDS wildcard, EDS of its clusters, LDS wildcard, RDS of its
route names) and ACK every response, on the serve_fanout mesh (34 services, the clients default
REDIRECT sidecars sharing one scope). Then three kinds of change, each made to two services in
turn, `--rounds` times (so made and undone from the second round on):

- endpoint: one service's v2 pod moves to another IP (two ClusterLoadAssignments change);
- route: one VirtualService's header match flips subsets (one RouteConfiguration changes);
- cluster: one subset gains a connection limit of its own (one Cluster, and so its EDS, changes).

With `--own-sidecars`, the clients are serve_convergence.py's instead: interception NONE, each with
a Sidecar of its own binding its egress listener to its own address (`--proxies 20 --services 100`
is that benchmark's mesh in-process), so every proxy has its own listeners.

Measured per change (CPU of this process, median of the rounds): translation (the new snapshot),
the pushes of every stream (the CPU inside each stream's `on_config` and `on_request` for the ACKs
and subscriptions), apart from it the decoding of the ACKs' bytes (limits.read, done by each
stream's reader), and the responses and bytes written. That is serve's share of serve_fanout's
figures: the simulated Envoys' own work and the gRPC writes are not in it.
RSS per stream is measured too (tracemalloc: Python objects only). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message
from ads_clients import names_in
from servebench import Client as ServeClient, MeshDir, print_table, simulated_clients

from meshctl.config.loader import load
from meshctl.generate.bootstrap import ads_bootstrap
from meshctl.generate.translator import Translator
from meshctl.model.node import ISTIO_NODES
from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshctl.sources.base import SourceUpdate
from meshctl.xds.cache import SnapshotCache
from meshctl.xds.limits import Names, RequestRefused, read
from meshctl.xds.stream import Push, SotwStream


PROFILE: cProfile.Profile | None = None
"""Set while the largest N is measured with --profile: serve's calls only, not the clients'."""


class Client:
    """One simulated Envoy on a stream driven by hand: what it subscribes to, what it ACKs."""

    def __init__(self, stream: SotwStream) -> None:
        self.stream = stream
        self.responses = 0
        self.bytes = 0
        self.serve_seconds = 0.0
        """CPU spent in the stream's methods (serve's side), not in playing Envoy."""
        self.read_seconds = 0.0
        """CPU spent decoding the ACKs' bytes (serve's reader task), apart from serve_seconds."""

    def serve(self, call: Callable[[], list[Push]]) -> list[Push]:
        started = time.process_time()
        if PROFILE is not None:
            PROFILE.enable()
        try:
            return call()
        finally:
            if PROFILE is not None:
                PROFILE.disable()
            self.serve_seconds += time.process_time() - started

    def read(self, raw: bytes) -> tuple[Message, Names | RequestRefused]:
        """An ACK's bytes decoded as the stream's reader does (limits.read), timed with serve's
        work: a small request is read without waiting, so its coroutine is run here by hand."""
        started = time.process_time()
        reading = read(discovery_pb2.DiscoveryRequest, raw)
        try:
            reading.send(None)
        except StopIteration as done:
            return done.value
        finally:
            self.read_seconds += time.process_time() - started
        raise RuntimeError("a small request was read with a wait")

    def start(self) -> None:
        request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
        request.node.CopyFrom(self.stream.node)
        self.answer(self.serve(lambda: self.stream.on_request(request)))
        self.answer(self.serve(lambda: self.stream.on_request(discovery_pb2.DiscoveryRequest(type_url=LISTENER))))

    def answer(self, pushes: list[Push]) -> None:
        """ACK every push, subscribing first to what a CDS or LDS response names."""
        while pushes:
            push = pushes.pop(0)
            self.responses += 1
            self.bytes += len(push.payload)
            response = discovery_pb2.DiscoveryResponse.FromString(push.payload)
            if response.type_url in (CLUSTER, LISTENER):
                dependent, names = ENDPOINT if response.type_url == CLUSTER else ROUTE, names_in(response)
                subscribe = discovery_pb2.DiscoveryRequest(type_url=dependent, resource_names=names)
                pushes.extend(self.serve(lambda: self.stream.on_request(subscribe)))
            watch = self.stream.watches[response.type_url]
            raw = discovery_pb2.DiscoveryRequest(type_url=response.type_url, version_info=response.version_info,
                                                 response_nonce=response.nonce, resource_names=sorted(watch.names)
                                                 ).SerializeToString()
            pushes.extend(self.serve(lambda: self.stream.on_request(*self.read(raw))))


class World:
    """The mesh directory, the cache serving it, and the connected clients."""

    def __init__(self, base: Path, proxies: int, services: int, own_sidecars: bool = False) -> None:
        clients = sidecar_clients(proxies) if own_sidecars else simulated_clients(proxies)
        self.mesh = MeshDir(base, services, clients)
        self.cache = SnapshotCache(ISTIO_NODES)
        self.translate = Translator()
        self.read_seconds = 0.0
        self.update()
        nodes = [ads_bootstrap(p, "127.0.0.1", 0, admin_port=0).node for p in self.mesh.proxies(clients)]
        self.clients = [Client(SotwStream(self.cache, node)) for node in nodes]
        for client in self.clients:
            client.start()

    def update(self) -> float:
        """Load the directory and apply it; the CPU seconds of the translation."""
        result = load([str(self.mesh.root)])
        started = time.process_time()
        self.cache.apply(SourceUpdate(tuple(result.resources)), self.translate)
        return time.process_time() - started

    def push(self) -> tuple[float, int, int]:
        """Every stream takes the new config and its client ACKs: serve's CPU seconds (the
        streams' methods: generation, diffs, encoding, handling the ACKs), responses, bytes; the
        CPU seconds of decoding the ACKs are left in `read_seconds`."""
        for client in self.clients:
            client.responses = client.bytes = 0
            client.serve_seconds = client.read_seconds = 0.0
        for client in self.clients:
            client.answer(client.serve(client.stream.on_config))
        spent = sum(c.serve_seconds for c in self.clients)
        self.read_seconds = sum(c.read_seconds for c in self.clients)
        return spent, sum(c.responses for c in self.clients), sum(c.bytes for c in self.clients)


def sidecar_clients(count: int) -> list[ServeClient]:
    """serve_convergence.py's clients (`envoy_clients`), on addresses nothing binds here."""
    return [ServeClient(f"client{k}", f"127.1.{k // 256}.{k % 256 + 1}", bind=f"127.1.{k // 256}.{k % 256 + 1}")
            for k in range(count)]


CHANGES: dict[str, Callable[[MeshDir, int], object]] = {
    "endpoint": lambda mesh, i: mesh.toggle_endpoint(i),
    "route": lambda mesh, i: mesh.toggle_route(i),
    "cluster": lambda mesh, i: mesh.toggle_subset_limit([i]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxies", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--services", type=int, default=34)
    parser.add_argument("--rounds", type=int, default=2, help="times each change is made to each of two services")
    parser.add_argument("--profile", action="store_true", help="print where the push time goes (largest N)")
    parser.add_argument("--own-sidecars", action="store_true", help="serve_convergence.py's clients: a Sidecar each")
    args = parser.parse_args()
    shape = "each with a Sidecar of its own" if args.own_sidecars else "sharing one scope"
    print(f"# serve push cost in-process (no gRPC): {args.services} services, SotW streams {shape}, "
          f"median of {2 * args.rounds} edits")
    global PROFILE
    rows = []
    profile = cProfile.Profile() if args.profile else None
    for count in args.proxies:
        with tempfile.TemporaryDirectory(prefix="meshctl-bench-") as directory:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            world = World(Path(directory), count, args.services, args.own_sidecars)
            per_stream = (tracemalloc.get_traced_memory()[0] - before) / count
            tracemalloc.stop()
            for change, edit in CHANGES.items():
                figures = []
                for round_ in range(2 * args.rounds):
                    edit(world.mesh, round_ % 2 * 3 + 1)
                    translate = world.update()
                    PROFILE = profile if count == args.proxies[-1] else None
                    spent, responses, size = world.push()
                    PROFILE = None
                    figures.append((translate, spent, responses, size, world.read_seconds))
                translate, spent, responses, size, reading = (statistics.median(f[i] for f in figures) for i in range(5))
                rows.append([f"{count} proxies, {change}", translate * 1e3, spent * 1e3, spent * 1e6 / count,
                             reading * 1e6 / count, int(responses), int(size / max(responses, 1))])
            rows.append([f"{count} proxies, Python heap KB per stream", per_stream / 1024])
    print_table(["change", "translate ms", "pushes ms", "µs per proxy", "+ ACK decoding µs", "responses", "bytes each"], rows)
    if profile is not None:
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
