"""`meshctl serve` as a subprocess (with the fake translator), for tests that kill and restart it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshctl.loopback import ensure_running, free_port, http_get, wait_until

HERE = Path(__file__).resolve().parent


class Serve:
    """A `meshctl serve` subprocess on fixed ports, so it can be killed and started again. Its
    CA is off unless `ca_dir` is given (then it listens on `ca_port`, TLS)."""

    def __init__(self, config_dir: Path, start: Callable[..., subprocess.Popen[bytes]], log: Path,
                 ca_dir: Path | None = None, flags: tuple[str, ...] = (), translator: str = "fake_mesh:translate") -> None:
        self.config_dir = config_dir
        self.flags = flags
        self.translator = translator
        self.start_process = start
        self.xds_port = free_port()
        self.debug_port = free_port()
        self.ca_port = free_port() if ca_dir is not None else 0
        self.ca_dir = ca_dir
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self, *extra: str) -> list[str]:
        ca = ["--ca-address", ""]
        if self.ca_dir is not None:
            ca = ["--ca-address", f"127.0.0.1:{self.ca_port}", "--ca-dir", str(self.ca_dir)]
        return [sys.executable, str(HERE / "serve_main.py"), "--config-dir", str(self.config_dir),
                "--xds-address", f"127.0.0.1:{self.xds_port}", "--debug-address", f"127.0.0.1:{self.debug_port}",
                "--translator", self.translator, *ca, *extra]

    @staticmethod
    def env() -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent)]))

    def start(self) -> Serve:
        with self.log.open("ab") as log:
            self.process = self.start_process(
                self.argv("--debounce-after", "10ms", "--log-level", "debug", *self.flags),
                stdout=log, stderr=subprocess.STDOUT, env=self.env(),
            )
        process = self.process
        wait_until(lambda: ensure_running(process, "serve", [self.log]) and http_get(self.url("/ready"))[0] == 200,
                   10, what="meshctl serve /ready")
        return self

    def kill(self) -> None:
        """kill -9: no clean shutdown, as when a node dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.debug_port}{path}"

    def open(self, path: str) -> Any:
        return urllib.request.urlopen(self.url(path), timeout=5)

    def json(self, path: str) -> Any:
        with self.open(path) as response:
            return json.load(response)

    def statuses(self, proxy: str = "web.default") -> dict[str, dict[str, Any]]:
        for config in self.json("/debug/syncz"):
            if config["node"]["id"] == proxy:
                return {c["typeUrl"]: c for c in config["genericXdsConfigs"]}
        return {}

    def synced(self, proxy: str = "web.default") -> bool:
        statuses = self.statuses(proxy)
        return len(statuses) == 4 and all(s["configStatus"] == "SYNCED" for s in statuses.values())


class ReadyProbe:
    """Asks serve's `/ready` every `interval` seconds, timing each answer (a connection per
    request, as a kubelet probe does; no answer within a second counts as a second).

    It runs in a process of its own (ready_probe.py), so that the test's own threads (request
    loops, hostile clients encoding megabytes) do not slow the measurement. `slowest` is the
    longest answer less the time serve's event loop (or the probe) sat runnable waiting for a
    CPU the machine gave to others: what serve itself is answerable for, and what the tests hold
    under 100 ms. `slowest_wall` is the raw figure, reported alongside.
    """

    def __init__(self, serve: Serve, interval: float = 0.02) -> None:
        self.serve = serve
        self.interval = interval
        self.latencies: list[float] = []
        self.waits: list[float] = []
        self.failures: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ReadyProbe:
        assert self.serve.process is not None
        self._process = subprocess.Popen(
            [sys.executable, str(HERE / "ready_probe.py"), self.serve.url("/ready"), str(self.interval),
             str(self.serve.process.pid)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=Serve.env(),
        )
        assert self._process.stdout is not None
        assert self._process.stdout.readline() == b"probing\n", "the /ready probe did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        out, _ = self._process.communicate(b"", timeout=10)
        result = json.loads(out)
        self.latencies, self.waits, self.failures = result["latencies"], result["waits"], result["failures"]
        self.times: list[float] = result["times"]

    @property
    def slowest(self) -> float:
        return max(self._beyond_waiting(), default=0.0)

    def _beyond_waiting(self) -> list[float]:
        return [max(0.0, wall - wait) for wall, wait in zip(self.latencies, self.waits, strict=True)]

    @property
    def slowest_wall(self) -> float:
        return max(self.latencies, default=0.0)

    def check(self, limit: float = 0.1) -> None:
        """Every answer (there was one at least) 200 and within `limit` seconds."""
        assert self.latencies, "the probe asked nothing"
        assert not self.failures, self.failures[:5]
        beyond = self._beyond_waiting()
        worst = beyond.index(max(beyond))
        assert beyond[worst] < limit, (
            f"/ready took {beyond[worst] * 1e3:.0f} ms beyond waiting for a CPU ({self.latencies[worst] * 1e3:.0f} ms "
            f"in all; limit {limit * 1e3:.0f} ms), asked at {self.times[worst]:.3f}")
