"""Soak: `python benchmarks/serve_soak.py [--clients N] [--minutes M] [--short]`.

`meshctl serve` on the serve_fanout mesh with N simulated SotW proxies (benchmarks/ads_clients.py,
default 1,000), and an endpoint change every second for M minutes (default 10; `--short`: one
minute), each change waited for until every proxy ACKed it. Every 30 seconds (15 with `--short`):
serve's RSS, the connected streams, and the p50 / max of change → ACK over that window. Printed
at the end: RSS growth from the end of the first window (warm: every cache has seen a change) to
the last sample, streams lost, changes that were not ACKed by every proxy. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from google.protobuf import json_format
from servebench import (
    LineProcess,
    MeshDir,
    ServeProcess,
    ended,
    machine_description,
    percentile,
    print_table,
    service_account,
    simulated_clients,
)

from meshctl.generate.bootstrap import ads_bootstrap

CONNECTED = 'meshctl_xds_connected_proxies{mode="sotw"}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--services", type=int, default=34)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--short", action="store_true", help="one minute instead of --minutes")
    args = parser.parse_args()
    seconds = 60.0 if args.short else args.minutes * 60
    window = 15.0 if args.short else 30.0
    print(f"# serve soak: {args.clients} simulated SotW proxies, {args.services} services, "
          f"one endpoint change per second for {seconds:.0f} s")
    print(f"# {machine_description()}")
    with tempfile.TemporaryDirectory(prefix="meshctl-soak-") as directory:
        base = Path(directory)
        simulated = simulated_clients(args.clients)
        mesh = MeshDir(base, args.services, simulated)
        nodes = [json_format.MessageToDict(ads_bootstrap(p, "127.0.0.1", 0, admin_port=0,
                                                         service_account=service_account(p)).node)
                 for p in mesh.proxies(simulated)]
        (base / "nodes.json").write_text(json.dumps(nodes))
        serve = ServeProcess(mesh.root, log_level="info", debug_http=True)
        with ended(serve):
            serve.start()
            fleet = LineProcess("ads_clients.py", str(base / "nodes.json"), str(serve.xds_port))
            with ended(fleet):
                fleet.read()
                rows: list[list[object]] = []
                first_rss = 0
                started = window_start = time.monotonic()
                acked: list[float] = []
                changes = failed = 0
                while time.monotonic() - started < seconds:
                    tick = time.monotonic()
                    fleet.ask("mark")
                    written = mesh.toggle_endpoint(changes % args.services)
                    changes += 1
                    answer = fleet.ask("wait")
                    if "error" in answer:
                        failed += 1
                    else:
                        acked.extend((at - written) * 1e3 for at in answer["acked"].values())
                    if time.monotonic() - window_start >= window:
                        rss = serve.rss_kb()
                        first_rss = first_rss or rss
                        rows.append([f"{time.monotonic() - started:.0f} s", rss / 1024,
                                     int(serve.metrics().get(CONNECTED, 0)),
                                     percentile(acked, 0.5) if acked else 0.0, max(acked, default=0.0)])
                        acked, window_start = [], time.monotonic()
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
                last_rss = serve.rss_kb()
                connected = int(serve.metrics().get(CONNECTED, 0))
    print_table(["elapsed", "RSS MB", "streams", "ACK p50 ms", "ACK max ms"], rows)
    print()
    print_table(["soak", "value"], [
        ["changes", changes],
        ["changes not ACKed by every proxy", failed],
        ["streams lost", args.clients - connected],
        ["RSS growth % (first window's end → last)", (last_rss - first_rss) * 100 / max(first_rss, 1)],
    ])


if __name__ == "__main__":
    main()
