"""Bytes on the wire, Delta against SotW: `python benchmarks/serve_delta.py [--services N]`.

Two real Envoys hold the same config, about 1,000 clusters (N services of benchmarks/meshgen.py,
three clusters each, default 333, plus PassthroughCluster and BlackHoleCluster): one speaks SotW
ADS, the other Delta ADS. One cluster then changes (subset v2 of one service gains or loses a
connection limit), three rounds. The bytes are serve's own counter of what it wrote
(`meshctl_xds_pushed_bytes_total`, by type and protocol, read from /metrics before and after);
the times are serve's ACK events (from the start of translating the change to the ACK), where
the SotW Envoy also pays for parsing every cluster again. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from servebench import (
    EnvoyFleet,
    MeshDir,
    ServeProcess,
    ended,
    envoy_clients,
    machine_description,
    median,
    print_table,
)

TYPES = ("CDS", "EDS", "LDS", "RDS")


def _fraction(delta: float, sotw: float) -> str:
    return f"1/{sotw / delta:,.0f}" if delta < sotw else f"{delta / sotw:.2f}"


def pushed_bytes(serve: ServeProcess) -> dict[tuple[str, str], float]:
    samples = serve.metrics()
    return {(kind, mode): samples.get(f'meshctl_xds_pushed_bytes_total{{type="{kind}",mode="{mode}"}}', 0.0)
            for kind in TYPES for mode in ("sotw", "delta")}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=333)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"# serve Delta vs SotW: 1 of {3 * args.services + 2} clusters changes, one Envoy per protocol, "
          f"median of {args.rounds} rounds")
    print(f"# {machine_description()}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="meshctl-bench-") as directory:
        base = Path(directory)
        sotw, delta = envoy_clients(2)
        mesh = MeshDir(base, args.services, [sotw, delta])
        serve = ServeProcess(mesh.root, debug_http=True)
        fleet = EnvoyFleet(base / "envoys")
        with ended(fleet, serve):
            serve.start()
            sotw_proxy, delta_proxy = mesh.proxies([sotw, delta])
            fleet.start([sotw_proxy], serve.xds_port)
            fleet.start([delta_proxy], serve.xds_port, delta=True)
            fleet.wait_live()
            serve.converged(0, [sotw.proxy_id, delta.proxy_id], change=False)
            rounds = []
            for index in range(args.rounds):
                before = pushed_bytes(serve)
                since = serve.mark()
                mesh.toggle_subset_limit([index])
                converged = serve.converged(since, [sotw.proxy_id, delta.proxy_id])
                after = pushed_bytes(serve)
                rounds.append(({key: after[key] - before[key] for key in after}, converged))
    rows = []
    for kind in TYPES:
        sotw_bytes = median(r[(kind, "sotw")] for r, _ in rounds)
        delta_bytes = median(r[(kind, "delta")] for r, _ in rounds)
        if sotw_bytes and delta_bytes:
            rows.append([kind, f"{sotw_bytes:,.0f}", f"{delta_bytes:,.0f}", _fraction(delta_bytes, sotw_bytes)])
    total_sotw = median(sum(v for (_, mode), v in r.items() if mode == "sotw") for r, _ in rounds)
    total_delta = median(sum(v for (_, mode), v in r.items() if mode == "delta") for r, _ in rounds)
    rows.append(["all", f"{total_sotw:,.0f}", f"{total_delta:,.0f}", _fraction(total_delta, total_sotw)])
    print("\nbytes serve wrote for the change, per proxy")
    print_table(["type", "SotW", "Delta", "Delta/SotW"], rows)
    print(f"\nchange → ACK (ms; NACKs: {sum(c.nacks for _, c in rounds)})")
    print_table(["protocol", "last ACK"], [
        ["SotW", median(c.server_ms[sotw.proxy_id] for _, c in rounds)],
        ["Delta", median(c.server_ms[delta.proxy_id] for _, c in rounds)],
    ])
    print(f"\n# {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
