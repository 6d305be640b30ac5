"""Convergence of real Envoys on `meshctl serve`: `python benchmarks/serve_convergence.py [--envoys N]`.

The mesh is benchmarks/meshgen.py's (100 services by default, each a Service, a VirtualService,
a DestinationRule with subsets v1/v2, three pods; one file per service), plus one client
workload per Envoy. serve runs with `--debounce-after 0`; the Envoys (SotW ADS, bootstraps from
`ads_bootstrap`) run with `--concurrency 1 --disable-hot-restart -l warning`.

(a) One service changed, 3 rounds of each kind:
    - route: its VirtualService sends the header-matched route to v1 instead of v2 (RDS);
    - cluster: its subset v2 gains or loses a connection limit (one Cluster, so CDS, plus the
      re-sent ClusterLoadAssignment, EDS).
    Two client shapes: `sidecar`, every client with its own Sidecar (egress listener bound to its
    own loopback address, interception NONE), so no two proxies share a scope; and `redirect`,
    default sidecars in REDIRECT mode sharing one scope (their 15001/15006 listeners share the
    port through SO_REUSEPORT, Envoy's default).
(b) Bulk: subset v2 of all services changes at once (one Cluster per service), 3 rounds, on
    the `sidecar` shape.

The floor for both: a fresh set of Envoys with the same bootstraps converges on the same
sequence of changes served by benchmarks/raw_replay.py (the translator's output for every step,
recorded beforehand and pushed as pre-serialized responses), in the same run. What serve adds
to that is translation and its own protocol work; the rest is Envoy applying the config.

Times come from the servers' clocks: serve's `ACK` debug events carry `convergence_ms` (from the
start of translating the change to the ACK); the raw replay measures from its bump to each ACK.
"write→ACK" adds the file watcher: from the rename of the edited file to the last ACK, on the
wall clock (serve logs milliseconds). p50 and max are over the Envoys; each figure is the median
of the rounds. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from servebench import (
    Client,
    Convergence,
    EnvoyFleet,
    LineProcess,
    MeshDir,
    ServeProcess,
    ended,
    envoy_clients,
    machine_description,
    median,
    percentile,
    print_table,
    record,
)

from meshctl.loopback import free_port

Row = list[object]


KINDS = {"route": "route (RDS)", "cluster": "cluster (CDS+EDS)"}


@dataclass(frozen=True, slots=True)
class Change:
    """One edit of the mesh: `route` and `cluster` touch service `index`, `bulk` every service."""

    kind: str
    index: int = 0

    def apply(self, mesh: MeshDir) -> float:
        if self.kind == "route":
            return mesh.toggle_route(self.index)
        return mesh.toggle_subset_limit([self.index] if self.kind == "cluster" else range(mesh.services))


def plan(rounds: int, bulk: bool) -> list[Change]:
    """The same sequence of edits for serve and for the replay, so both converge on equal changes."""
    changes = [Change("route", i) for i in range(rounds)] + [Change("cluster", i) for i in range(rounds)]
    return changes + [Change("bulk")] * rounds if bulk else changes


def redirect_clients(count: int) -> list[Client]:
    return [Client(f"client{k}", f"10.201.{k // 256}.{k % 256}") for k in range(count)]


def run_serve(base: Path, shape: str, clients: Sequence[Client], services: int,
              changes: Sequence[Change]) -> dict[str, list[Convergence]]:
    """Every change in turn, through meshctl serve to real Envoys; results by kind of change."""
    mesh = MeshDir(base / shape, services, clients)
    serve = ServeProcess(mesh.root)
    fleet = EnvoyFleet(base / shape / "envoys")
    ids = [c.proxy_id for c in clients]
    results: dict[str, list[Convergence]] = {}
    with ended(fleet, serve):
        serve.start()
        fleet.start(mesh.proxies(clients), serve.xds_port)
        fleet.wait_live()
        serve.converged(0, ids, change=False)
        for change in changes:
            since = serve.mark()
            written = change.apply(mesh)
            results.setdefault(change.kind, []).append(serve.converged(since, ids, written=written))
    return results


def run_replay(base: Path, clients: Sequence[Client], services: int,
               changes: Sequence[Change]) -> dict[str, list[dict[str, float]]]:
    """The floor: the same bootstraps, mesh and changes, served as pre-serialized responses."""
    mesh = MeshDir(base / "replay", services, clients)
    proxies = mesh.proxies(clients)
    recording = base / "replay" / "recording.pickle"
    recording.write_bytes(pickle.dumps(record(mesh, proxies, changes)))
    port = free_port()
    fleet = EnvoyFleet(base / "replay" / "envoys")
    replay = LineProcess("raw_replay.py", str(recording), str(port))
    results: dict[str, list[dict[str, float]]] = {}
    with ended(fleet, replay):
        replay.read()
        fleet.start(proxies, port)
        fleet.wait_live()
        replay.ask(f"synced {len(proxies)}")
        for change in changes:
            results.setdefault(change.kind, []).append(replay.ask("bump")["ms"])
            time.sleep(0.3)
    return results


def _p50_max(rounds: Sequence[Mapping[str, float]]) -> tuple[float, float]:
    """Median over the rounds of the p50 and of the max over the Envoys."""
    return median(percentile(r.values(), 0.5) for r in rounds), median(max(r.values()) for r in rounds)


def _serve_row(label: str, rounds: Sequence[Convergence]) -> Row:
    return [label, *_p50_max([r.server_ms for r in rounds]), median(max(r.wall_ms.values()) for r in rounds),
            median(r.translate_ms for r in rounds), sum(r.nacks for r in rounds), max(r.generations for r in rounds)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoys", type=int, default=20)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"# serve convergence: {args.envoys} Envoys, {args.services} services, debounce 0, SotW, "
          f"median of {args.rounds} rounds")
    print(f"# {machine_description()}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="meshctl-bench-") as directory:
        base = Path(directory)
        sidecars = envoy_clients(args.envoys)
        changes = plan(args.rounds, bulk=True)
        served = run_serve(base, "sidecar", sidecars, args.services, changes)
        redirected = run_serve(base, "redirect", redirect_clients(args.envoys), args.services, plan(args.rounds, bulk=False))
        replayed = run_replay(base, sidecars, args.services, changes)
    print("\n(a) one service changed: change → last ACK per Envoy, ms (serve: from translation start; "
          "raw replay: from its push)")
    rows = []
    for kind in ("route", "cluster"):
        rows.append(_serve_row(f"sidecar {KINDS[kind]}: serve", served[kind]))
        rows.append([f"sidecar {KINDS[kind]}: raw replay", *_p50_max(replayed[kind])])
    rows.extend(_serve_row(f"redirect {KINDS[kind]}: serve", redirected[kind]) for kind in ("route", "cluster"))
    print_table(["change", "p50", "max", "write→ACK max", "translate", "NACKs", "configs"], rows)
    serve_p50, serve_max = _p50_max([r.server_ms for r in served["bulk"]])
    raw_p50, raw_max = _p50_max(replayed["bulk"])
    print(f"\n(b) bulk: subset v2 of all {args.services} services changed ({args.services} clusters per Envoy), "
          f"sidecar shape, ms")
    print_table(["server", "p50", "max"], [
        ["meshctl serve", serve_p50, serve_max],
        ["raw replay", raw_p50, raw_max],
        ["ratio", f"{serve_p50 / raw_p50:.2f}", f"{serve_max / raw_max:.2f}"],
    ])
    print(f"\n# {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
