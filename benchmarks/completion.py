"""How long a TAB takes: `python benchmarks/completion.py [RUNS]` (default 20 per case).

Each TAB is a fresh process, exactly what the shell scripts of `meshctl completion bash` start:
the installed `meshctl` console script with `_MESHCTL_COMPLETE=complete_bash`. The command tree
is cached first (the first TAB after installing or upgrading builds it; that one is timed too).
Cases:

- commands, subcommands, option names and option choices (the tree alone);
- pod names from a cluster: a stdlib HTTP server answering the pod list with 50 running pods
  and checking the bearer token, as an API server would (the time is meshctl's: the server
  answers in well under a millisecond);
- proxy IDs from a control plane: a real `meshctl serve` on the bookinfo example, asked over
  ADS (syncz) as `meshctl ps --xds-address ... --plaintext <TAB>` does;
- and for scale, `python -c pass` and `meshctl --version` (the whole CLI imported).

Bytecode is written and used, as in any installation (pip compiles the package when it
installs it); an environment that sets PYTHONDONTWRITEBYTECODE would time the compiler instead.

Prints median and worst wall time per case and the machine; the target is 100 ms a TAB.
Nothing is asserted. Every process started is ended by its PID.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from servebench import machine_description

from meshctl.loopback import Processes, free_port, http_get, wait_until

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
PODS = [f"reviews-v1-7f9c4b-{index:05d}" for index in range(50)]


class _ApiServer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_error(401)
            return
        body = json.dumps({"kind": "PodList", "items": [{"metadata": {"name": name}} for name in PODS]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def _kubeconfig(directory: Path, port: int) -> Path:
    path = directory / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "bench",
        "clusters": [{"name": "bench", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "bench", "user": {"token": TOKEN}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
    }))
    return path


ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tab(meshctl: str, cache: Path, line: str) -> tuple[float, float, str]:
    """(wall, CPU) seconds of one TAB, and its answer."""
    words = line.split()
    env = dict(ENV, XDG_CACHE_HOME=str(cache), _MESHCTL_COMPLETE="complete_bash", COMP_WORDS=line,
               COMP_CWORD=str(len(words) if line.endswith(" ") else len(words) - 1))
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run([meshctl], env=env, capture_output=True, text=True, timeout=60)
    return time.perf_counter() - started, _children_cpu() - cpu, done.stdout


def _timed(argv: list[str]) -> tuple[float, float]:
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run(argv, capture_output=True, timeout=60, check=True, env=ENV)
    return time.perf_counter() - started, _children_cpu() - cpu


def main(runs: int) -> None:
    meshctl = shutil.which("meshctl", path=str(Path(sys.executable).parent)) or "meshctl"
    with tempfile.TemporaryDirectory() as workdir, Processes() as processes:
        directory = Path(workdir)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ApiServer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        kubeconfig = _kubeconfig(directory, server.server_address[1])
        xds, debug = free_port(), free_port()
        serve = processes.start([sys.executable, "-m", "meshctl", "serve", "--config-dir", str(ROOT / "examples/bookinfo"),
                                 "--xds-address", f"127.0.0.1:{xds}", "--debug-address", f"127.0.0.1:{debug}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: serve.poll() is None and http_get(f"http://127.0.0.1:{debug}/ready")[0] == 200, 30,
                   what="meshctl serve ready")
        cache = directory / "cache"
        _timed([meshctl, "--version"])  # writes the bytecode the first run of an installation has
        first, first_cpu, _ = _tab(meshctl, cache, "meshctl pc ")
        cases = [
            ("commands: meshctl pro<TAB>", "meshctl pro", "proxy-config"),
            ("subcommands: meshctl pc <TAB>", "meshctl pc ", "clusters"),
            ("options: meshctl pc routes --<TAB>", "meshctl pc routes --", "--wide"),
            ("choices: meshctl ps -o <TAB>", "meshctl ps -o ", "table"),
            ("pods (50) from a cluster: meshctl pc clusters <TAB>", f"meshctl pc clusters -c {kubeconfig} ", PODS[0]),
            ("proxies from serve: meshctl ps --xds-address A --plaintext <TAB>",
             f"meshctl ps --xds-address 127.0.0.1:{xds} --plaintext ", ""),
        ]
        rows = [("first TAB after install (builds the tree)", [first], [first_cpu])]
        for label, line, expected in cases:
            walls, cpus = [], []
            for _ in range(runs):
                wall, cpu, out = _tab(meshctl, cache, line)
                if expected not in out:
                    raise SystemExit(f"{label}: unexpected answer {out!r}")
                walls.append(wall)
                cpus.append(cpu)
            rows.append((label, walls, cpus))
        for label, argv, count in (("floor: python -c pass", [sys.executable, "-c", "pass"], runs),
                                   ("whole CLI: meshctl --version", [meshctl, "--version"], max(3, runs // 4))):
            measured = [_timed(argv) for _ in range(count)]
            rows.append((label, [wall for wall, _ in measured], [cpu for _, cpu in measured]))
        server.shutdown()
    print(f"# completion benchmark: one TAB (a fresh process), {runs} runs per case; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall time grows with it, CPU time much less)")
    print(f"# {machine_description()}")
    print(f"{'case':<68} {'wall median':>11} {'worst':>7} {'CPU median':>11} (ms)")
    for label, walls, cpus in rows:
        print(f"{label:<68} {statistics.median(walls) * 1e3:>11.1f} {max(walls) * 1e3:>7.1f} "
              f"{statistics.median(cpus) * 1e3:>11.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, nargs="?", default=20, help="runs per case")
    main(parser.parse_args().count)
