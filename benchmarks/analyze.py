"""`meshctl analyze` on a generated mesh: how long reading, analyzing and reporting take.

    python benchmarks/analyze.py 100 1000

For each size, the mesh of `meshgen` (N services, each with a VirtualService, a
DestinationRule, three pods) is written to one file and analyzed as the command does: read
leniently, Istio's default ingress gateway assumed, every analyzer, then the messages kept,
sorted and rendered. Also the whole command in a fresh process (start-up included). Measured,
not asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from meshgen import mesh_yaml  # noqa: E402

from meshctl import analyze  # noqa: E402
from meshctl.analyze import report  # noqa: E402
from meshctl.analyze.inputs import gather  # noqa: E402
from meshctl.model.meshconfig import MeshConfig  # noqa: E402


def _best(runs: int, work: object) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main(sizes: list[int]) -> None:
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'services':>8} {'objects':>8} {'read':>8} {'analyze':>8} {'report':>8} {'command':>8} {'messages':>8}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "mesh.yaml"
            path.write_text(mesh_yaml(size))
            read = _best(3, lambda: gather([str(path)], "default", MeshConfig()))
            gathered = gather([str(path)], "default", MeshConfig())
            run = _best(3, lambda: analyze.run(gathered.resources, gathered.mesh, assumed=gathered.assumed))
            findings = analyze.run(gathered.resources, gathered.mesh, assumed=gathered.assumed)
            shown = _best(3, lambda: report.render(report.keep(findings, None, []), "log"))
            command = _best(1, lambda: subprocess.run(
                [sys.executable, "-m", "meshctl", "analyze", "-A", "-f", str(path)], capture_output=True, check=False))
            print(f"{size:>8} {len(gathered.resources):>8} {read * 1000:>6.0f}ms {run * 1000:>6.0f}ms "
                  f"{shown * 1000:>6.0f}ms {command * 1000:>6.0f}ms {len(findings):>8}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("services", type=int, nargs="*", default=[100, 1000], help="mesh sizes")
    main(parser.parse_args().services)
