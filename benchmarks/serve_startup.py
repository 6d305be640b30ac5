"""Start-up of `meshctl serve`: `python benchmarks/serve_startup.py [--runs N]`.

- exec → listening: from the exec of the `meshctl` console script (`meshctl serve` on a
  100-service directory, debounce 0, no debug HTTP) to the first TCP connect to its xDS port
  that succeeds (polled every millisecond). serve listens before it imports the translator or
  reads the directory, so proxies can connect while it does. Measured twice: as the environment
  runs Python (with PYTHONDONTWRITEBYTECODE set, as in some containers, every meshctl module is
  compiled from source on each start), and with a warm bytecode cache (PYTHONPYCACHEPREFIX in a
  temporary directory, filled by one unmeasured start), as after `pip install`;
- for scale, the interpreter alone (`python -c pass`) and the import of the CLI (`python -c
  "import meshctl.cli.application"`: Typer and every command), with the same two caches;
- exec → config accepted: until serve logs `config accepted` for 100 and 1,000 services (the
  directory read by the strict loader plus the first translation), median of 3.

Best and median of N runs (default 10). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from servebench import MeshDir, machine_description, median, meshctl_executable, print_table

from meshctl.loopback import free_port, stop_process, wait_accepting


def serve_argv(config_dir: Path, port: int) -> list[str]:
    """serve as it runs for real, its CA too (on any free port, its directory next to the mesh's)."""
    return [meshctl_executable(), "serve", "--config-dir", str(config_dir), "--xds-address", f"127.0.0.1:{port}",
            "--debug-address", "", "--debounce-after", "0", "--log-format", "json", "--ca-address", "127.0.0.1:0",
            "--ca-dir", str(config_dir.parent / "ca")]


def until_listening(config_dir: Path, env: Mapping[str, str]) -> float:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(serve_argv(config_dir, port), env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_accepting(port, 30, process, "meshctl serve", interval=0.001)
        return time.monotonic() - started
    finally:
        stop_process(process)


def until_accepted(config_dir: Path, env: Mapping[str, str]) -> float:
    started = time.monotonic()
    process = subprocess.Popen(serve_argv(config_dir, free_port()), env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if b'"config accepted"' in line:
                return time.monotonic() - started
        raise SystemExit(f"meshctl serve exited with {process.wait()} before accepting its config")
    finally:
        stop_process(process)


def until_exit(argv: Sequence[str], env: Mapping[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, env=env, check=True)
    return time.monotonic() - started


def timed(runs: int, measure: Callable[[], float]) -> tuple[float, float]:
    """(best, median) in milliseconds."""
    times = [measure() * 1e3 for _ in range(runs)]
    return min(times), median(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"# serve start-up, best and median of {args.runs} runs (exec → accepted config: median of 3)")
    print(f"# {machine_description()}")
    as_is = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="meshctl-bench-") as directory:
        base = Path(directory)
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        small = MeshDir(base / "100", 100, [])
        large = MeshDir(base / "1000", 1000, [])
        until_listening(small.root, cached)
        environments = [
            (f"as is (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!s})", as_is),
            ("bytecode cached", cached),
        ]
        rows = []
        for label, env in environments:
            rows.append([f"exec → listening, {label}", *timed(args.runs, lambda env=env: until_listening(small.root, env))])
        for label, env in environments:
            rows.append([f"python -c pass, {label}", *timed(args.runs, lambda env=env: until_exit([sys.executable, "-c", "pass"], env))])
            rows.append([f"import meshctl.cli.application, {label}",
                         *timed(args.runs, lambda env=env: until_exit([sys.executable, "-c", "import meshctl.cli.application"], env))])
        for mesh in (small, large):
            accepted = median(until_accepted(mesh.root, cached) * 1e3 for _ in range(3))
            rows.append([f"exec → config accepted, {mesh.services} services, bytecode cached", "", accepted])
    print()
    print_table(["", "best ms", "median ms"], rows)


if __name__ == "__main__":
    main()
