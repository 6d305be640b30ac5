"""`meshctl explain` on a big proxy: `python benchmarks/explain.py [SERVICES]` (default 1000).

Starts `meshctl serve` on a generated mesh (benchmarks/meshgen.py: every service with a
VirtualService, a DestinationRule with two subsets and three endpoints) plus one client
workload whose real Envoy is configured by serve, waits until it holds every cluster, saves its
`/config_dump?include_eds`, then times complete command runs (a fresh `python -m meshctl`
process each, best of 3) explaining one request for a service in the middle of the mesh:

- `--admin URL`: the live Envoy, asked only for what the request touches;
- `--file DUMP`: Envoy's saved dump (tens of megabytes), read section by section;
- `-f FILES POD`: the input files read and the proxy translated as far as the request reaches
  (its listeners, one route configuration, one cluster and its endpoints);
- `--admin URL -f FILES`: the live Envoy, traced back to the files (file:line);

and the floor, `meshctl --version`. Bytecode is written and used, as in any installation (pip
compiles the package when it installs it): an environment's PYTHONDONTWRITEBYTECODE is
dropped, or the figures would time the compiler. Each figure is the best wall time of 3 runs
and the CPU time (user + system) of the last run, which a shared machine inflates less.
Nothing is asserted. Every process started is ended by its PID.
"""

from __future__ import annotations

import argparse
import os
import resource
import urllib.request
from collections.abc import Callable

from inspection import CLIENT, NAMESPACE, best_of, big_proxy, cluster_count, command, meshctl
from servebench import machine_description


def timed(argv: list[str]) -> Callable[[], int]:
    """A command run returning its CPU time (user + system, in ms): on a shared machine the
    wall time also counts the waits for a core."""
    run = command(argv)

    def measure() -> int:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return round(1000 * (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))

    return measure


def main(services: int) -> None:
    bind = "127.0.0.78"
    port = 8080
    with big_proxy(services, bind, port) as proxy:
        admin, config = proxy.admin, proxy.config
        dump = proxy.work / "dump.json"
        with urllib.request.urlopen(f"{admin}/config_dump?include_eds", timeout=60) as response:
            dump.write_bytes(response.read())
        middle = services // 2
        request = ("--url", f"http://svc{middle}.ns{middle % 10}:{port}/", "-H", "end-user: jason",
                   "--address", bind)
        pod = f"{CLIENT}.{NAMESPACE}"
        cases = [
            ("Python alone: meshctl --version", meshctl("--version")),
            ("explain --admin (live Envoy)", meshctl("explain", "--admin", admin, *request)),
            ("explain --file (Envoy's dump)", meshctl("explain", "--file", str(dump), *request)),
            ("explain -f FILES (translation)", meshctl("explain", pod, "-f", str(config), *request)),
            ("explain --admin -f FILES (file:line)", meshctl("explain", pod, "--admin", admin, "-f", str(config),
                                                             *request)),
        ]
        print(f"# explain benchmark: one Envoy holding {cluster_count(admin)} clusters ({services} services); "
              f"its dump is {dump.stat().st_size / 1e6:.1f} MB")
        print(f"# {machine_description()}")
        print(f"{'command':<40} {'best of 3 s':>12} {'CPU s':>8}")
        for label, argv in cases:
            seconds, cpu = best_of(timed(argv))
            print(f"{label:<40} {seconds:>12.3f} {cpu / 1000:>8.3f}")


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # for every process started
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, nargs="?", default=1000, help="how many services")
    main(parser.parse_args().count)
