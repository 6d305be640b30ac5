"""`meshctl diff` of a one-line change: `python benchmarks/diff.py [SERVICES]` (default 1000).

A generated mesh (benchmarks/meshgen.py) of SERVICES services with one pod each, so as many
proxies, every service with a VirtualService and a DestinationRule. Three changes are timed, each
as a complete `python -m meshctl diff OLD NEW` process (best of 3 unless said, wall and CPU time):

- route: one service's header-matched route moves from subset v2 to v1 (one line of its
  VirtualService): every proxy sees it, one route configuration changes;
- cluster: one DestinationRule's connection limit changes (one line): every proxy's clusters
  for that service change, and the service's own inbound cluster; every proxy's clusters are
  translated on both sides, its listeners on neither (measured once);
- policy: an AuthorizationPolicy for that service's workload is added: one proxy's inbound
  listener changes, and only it is translated;

in two layouts: one file per service (a GitOps repository), and the whole mesh in one file.
The floor is `meshctl --version`. Bytecode is written and used, as in any installation (pip
compiles the package when it installs it): an environment's PYTHONDONTWRITEBYTECODE is
dropped, or the figures would time the compiler. Prints the figures and the machine; nothing
is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meshgen import mesh_yaml
from servebench import machine_description

RUNS = 3


def meshctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshctl", *args]


def per_service(text: str) -> list[str]:
    """The documents of meshgen's mesh grouped by service (each service's Service comes first)."""
    groups: list[str] = []
    for document in text.split("---\n"):
        if document.startswith("apiVersion: v1\nkind: Service\n"):
            groups.append("")
        groups[-1] += document if not groups[-1] else "---\n" + document
    return groups


def write(root: Path, texts: list[str]) -> Path:
    root.mkdir(parents=True)
    for index, text in enumerate(texts):
        (root / f"svc{index}.yaml").write_text(text)
    return root


def run(argv: list[str], runs: int) -> tuple[float, float, str]:
    """Best wall time of `runs` runs, its CPU time (user + system of the child) and its output."""
    best = (float("inf"), 0.0, "")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        if wall < best[0]:
            best = (wall, cpu, done.stdout)
    return best


def main(services: int) -> None:
    middle = services // 2
    original = mesh_yaml(services, pods=1)
    route = f"route: [{{destination: {{host: svc{middle}, subset: v2}}}}]"
    limit = "trafficPolicy: {connectionPool: {tcp: {maxConnections: 100}}}"
    policy = ("---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
              f"metadata: {{name: svc{middle}, namespace: ns{middle % 10}}}\n"
              f"spec: {{selector: {{matchLabels: {{app: svc{middle}}}}}, rules: [{{from: [{{source: {{namespaces: [ns1]}}}}]}}]}}\n")
    before_groups = per_service(original)
    edits = {
        "route": lambda text: text.replace(route, route.replace("v2", "v1"), 1),
        "cluster": lambda text: text.replace(limit, limit.replace("100", "200"), 1),
        "policy": lambda text: text + policy,
    }
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        old_dir = write(work / "old", before_groups)
        (work / "old.yaml").write_text(original)
        cases = [("Python alone: meshctl --version", meshctl("--version"), RUNS)]
        for name, edit in edits.items():
            after_groups = list(before_groups)
            after_groups[middle] = edit(after_groups[middle])
            assert after_groups[middle] != before_groups[middle], name
            new_dir = write(work / f"new-{name}", after_groups)
            (work / f"new-{name}.yaml").write_text("---\n".join(after_groups))
            runs = 1 if name == "cluster" else RUNS
            cases.append((f"{name} change, file per service", meshctl("diff", str(old_dir), str(new_dir)), runs))
            cases.append((f"{name} change, one file", meshctl("diff", str(work / "old.yaml"),
                                                            str(work / f"new-{name}.yaml")), runs))
        print(f"# diff benchmark: {services} services, {services} proxies, a one-line change")
        print(f"# {machine_description()}")
        print(f"{'case':<36} {'best wall s':>12} {'CPU s':>8}  result")
        for label, argv, runs in cases:
            wall, cpu, output = run(argv, runs)
            summary = next((line for line in output.splitlines() if line.startswith("proxy changes")), "")
            print(f"{label:<36} {wall:>12.3f} {cpu:>8.3f}  {summary}")


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # for every process started
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, nargs="?", default=1000, help="how many services")
    main(parser.parse_args().count)
