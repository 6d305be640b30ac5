"""Fan-out to many proxies: `python benchmarks/serve_fanout.py [--clients N] [--services M] [--views V]`.

`meshctl serve` (real translator, `--debounce-after 0`, info logging) on a mesh of M services of
benchmarks/meshgen.py (default 34: about 100 clusters per proxy) plus N client pods (default
1,000) that are default REDIRECT sidecars sharing one scope, or with `--views V` spread over V
namespaces each with a Sidecar of its own (V distinct views; see servebench.view_sidecars).
benchmarks/ads_clients.py plays the
N proxies in a separate process (grpc.aio, one channel and TCP connection each, SotW, ACKing like
Envoy), so server and clients share the machine's cores.

Then one service's v2 pod moves to another IP, and back, 3 rounds: the endpoints of two of its
clusters change, so every proxy is pushed an EDS response with those two and ACKs it. Measured:

- write → ACKed: from the rename of the edited file to each client's ACK (the clients' wall
  clock), p50 and max over the clients, median over the rounds; it includes serve noticing the
  file (watcher), reading it and translating ("translate" is serve's own figure);
- serve CPU per round (user + system, /proc; 10 ms resolution), also per proxy;
- serve RSS before the clients connect, when all are synced, a quiet second later (serve's quiet
  spell has collected by then), and a quiet second after the rounds; the difference per proxy.

The floor, in the same run: benchmarks/raw_replay.py (a bare grpc.aio ADS server, one task and
queue per stream, answering with pre-serialized responses of serve's translator) serves the same
clients the same moves as pushes of the recorded EDS change; its push → ACKed times (its own
clock, no file watching or translation), CPU and RSS per proxy are printed next to serve's.

Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import pickle
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from servebench import (
    LineProcess,
    MeshDir,
    ServeProcess,
    cpu_seconds,
    ended,
    machine_description,
    median,
    percentile,
    print_table,
    record,
    rss_kb,
    service_account,
    simulated_clients,
)

from meshctl.generate.bootstrap import ads_bootstrap
from meshctl.loopback import free_port


QUIET_SECOND = 1.0
"""Seconds waited before reading RSS again once the clients are synced, and after the rounds:
longer than serve's quiet spell (xds/heap.py), after which it collects and gives memory back."""


@dataclass(frozen=True, slots=True)
class Round:
    acked_ms: list[float]
    """Per client: from the rename of the edited file to its ACK."""
    cpu_seconds: float
    translate_ms: float
    configs: int
    responses: int


def measure(base: Path, clients: int, services: int, rounds: int, views: int = 1) -> tuple[dict[str, float], list[Round]]:
    """Connect the simulated proxies, then move an endpoint `rounds` times; figures of the start
    (seconds to sync, connected streams, RSS before and after) and of every round."""
    simulated = simulated_clients(clients, views)
    mesh = MeshDir(base, services, simulated)
    nodes = [json_format.MessageToDict(ads_bootstrap(p, "127.0.0.1", 0, admin_port=0, service_account=service_account(p)).node)
             for p in mesh.proxies(simulated)]
    (base / "nodes.json").write_text(json.dumps(nodes))
    serve = ServeProcess(mesh.root, log_level="info", debug_http=True)
    with ended(serve):
        serve.start()
        start = {"idle_kb": serve.rss_kb()}
        fleet = LineProcess("ads_clients.py", str(base / "nodes.json"), str(serve.xds_port))
        with ended(fleet):
            start["sync_s"] = fleet.read()["seconds"]
            start["connected"] = serve.metrics().get('meshctl_xds_connected_proxies{mode="sotw"}', 0)
            start["loaded_kb"] = serve.rss_kb()
            time.sleep(QUIET_SECOND)
            start["settled_kb"] = serve.rss_kb()
            results = []
            for index in range(rounds):
                fleet.ask("mark")
                since = serve.mark()
                cpu = serve.cpu_seconds()
                written = mesh.toggle_endpoint(index)
                answer = fleet.ask("wait")
                spent = serve.cpu_seconds() - cpu
                accepted = [e for e in serve.events[since:] if e.get("msg") == "config accepted"]
                results.append(Round([(at - written) * 1e3 for at in answer["acked"].values()], spent,
                                     sum(e.get("translate_ms", 0.0) for e in accepted), len(accepted),
                                     answer["responses"]))
            time.sleep(QUIET_SECOND)
            start["after_kb"] = serve.rss_kb()
    return start, results


@dataclass(frozen=True, slots=True)
class EndpointMove:
    """One round's edit, as servebench.record replays it."""

    index: int

    def apply(self, mesh: MeshDir) -> float:
        return mesh.toggle_endpoint(self.index)


def measure_floor(base: Path, clients: int, services: int, rounds: int, views: int) -> tuple[dict[str, float], list[Round]]:
    """The same clients and moves through raw_replay.py: figures of the start and of every round,
    the ACK times from the push (the replay's clock)."""
    simulated = simulated_clients(clients, views)
    mesh = MeshDir(base, services, simulated)
    proxies = mesh.proxies(simulated)
    nodes = [json_format.MessageToDict(ads_bootstrap(p, "127.0.0.1", 0, admin_port=0, service_account=service_account(p)).node)
             for p in proxies]
    (base / "nodes.json").write_text(json.dumps(nodes))
    (base / "recording.pickle").write_bytes(pickle.dumps(record(mesh, proxies, [EndpointMove(i) for i in range(rounds)])))
    port = free_port()
    replay = LineProcess("raw_replay.py", str(base / "recording.pickle"), str(port))
    with ended(replay):
        replay.read()
        pid = replay.process.pid
        start = {"idle_kb": float(rss_kb(pid))}
        fleet = LineProcess("ads_clients.py", str(base / "nodes.json"), str(port))
        with ended(fleet):
            fleet.read()
            replay.ask(f"synced {clients}")
            start["loaded_kb"] = rss_kb(pid)
            time.sleep(QUIET_SECOND)
            start["settled_kb"] = rss_kb(pid)
            results = []
            for _ in range(rounds):
                cpu = cpu_seconds(pid)
                answer = replay.ask("bump")
                results.append(Round(list(answer["ms"].values()), cpu_seconds(pid) - cpu, 0.0, 0, len(answer["ms"])))
                time.sleep(0.3)
            time.sleep(QUIET_SECOND)
            start["after_kb"] = rss_kb(pid)
    return start, results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--services", type=int, default=34)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-floor", action="store_true", help="skip the raw-replay floor")
    parser.add_argument("--views", type=int, default=1, help="namespaces (each with its own Sidecar) the clients are spread over")
    args = parser.parse_args(argv)
    scope = "sharing one view" if args.views <= 1 else f"in {args.views} views (a Sidecar per namespace)"
    print(f"# serve fan-out: {args.clients} simulated SotW proxies {scope} (one connection each, separate process), "
          f"{args.services} services ({3 * args.services + 2} clusters per proxy with one view), one endpoint change, "
          f"median of {args.rounds} rounds")
    print(f"# {machine_description()}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="meshctl-bench-") as directory:
        start, rounds = measure(Path(directory) / "serve", args.clients, args.services, args.rounds, args.views)
        floor_start, floor = ({}, []) if args.no_floor else measure_floor(
            Path(directory) / "floor", args.clients, args.services, args.rounds, args.views)
    print(f"\n{int(start['connected'])} streams connected and synced in {start['sync_s']:.1f} s")

    def column(figure: Any, of: list[Round]) -> object:
        return figure(of) if of else "-"

    per_change: list[tuple[str, Any]] = [
        ("→ ACKed p50 ms (serve: from the write; floor: from the push)", lambda rs: median(percentile(r.acked_ms, 0.5) for r in rs)),
        ("→ ACKed max ms", lambda rs: median(max(r.acked_ms) for r in rs)),
        ("responses", lambda rs: median(r.responses for r in rs)),
        ("CPU ms", lambda rs: median(r.cpu_seconds * 1e3 for r in rs)),
        ("CPU µs per proxy", lambda rs: median(r.cpu_seconds * 1e6 / args.clients for r in rs)),
    ]
    print_table(["per change (median of rounds)", "serve", "floor (raw replay)"],
                [[label, figure(rounds), column(figure, floor)] for label, figure in per_change]
                + [["translate ms (serve)", median(r.translate_ms for r in rounds), "-"],
                   ["configs accepted", max(r.configs for r in rounds), "-"]])
    print()

    def memory(of: dict[str, float]) -> list[object]:
        if not of:
            return ["-"] * 7
        when = ("loaded_kb", "settled_kb", "after_kb")
        return [of["idle_kb"] / 1024, *(of[w] / 1024 for w in when), *((of[w] - of["idle_kb"]) / args.clients for w in when)]

    print_table(["memory", "serve", "floor (raw replay)"], [
        [label, mine, theirs] for label, mine, theirs in zip(
            ["RSS before clients MB", "RSS with clients synced MB", "  then a quiet second MB", "  after the rounds and a quiet second MB",
             "KB per connected proxy", "  then a quiet second", "  after the rounds and a quiet second"],
            memory(start), memory(floor_start), strict=True)
    ])
    print(f"\n# {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
