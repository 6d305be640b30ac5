"""A whole mesh on one machine: meshctl serve, real Envoy sidecars and HTTP backends.

`LocalMesh` starts everything for the demo (and the end-to-end tests): backends answering with
their version, `meshctl serve` watching a config directory, and one Envoy per client workload
bootstrapped as that workload's sidecar. Every process it starts is tracked and ended by its
PID when the mesh stops, whatever the reason (an error, Ctrl-C).
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from meshctl.demo.mesh import BACKENDS, SERVICE_PORT, VERSIONS, Client, Layout, routing_yaml, workloads_yaml
from meshctl.envoybin import find_envoy
from meshctl.errors import MeshctlError

BACKEND_IPS = ("127.0.0.21", "127.0.0.22", "127.0.0.23")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now on `host` (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def plan_layout(client_names: Iterable[str]) -> Layout:
    """Addresses nobody uses right now: one backend port free on all backend IPs, and per client
    a loopback address whose service port is free (so sidecars can run side by side)."""
    for _ in range(50):
        port = free_port(BACKEND_IPS[0])
        if all(_bindable(ip, port) for ip in BACKEND_IPS):
            break
    else:
        raise MeshctlError(f"no port is free on all of {', '.join(BACKEND_IPS)}")
    clients = []
    candidates = (f"127.0.0.{n}" for n in range(40, 250))
    for name in client_names:
        bind = next((ip for ip in candidates if _bindable(ip, SERVICE_PORT)), None)
        if bind is None:
            raise MeshctlError(f"no loopback address has port {SERVICE_PORT} free for the {name} sidecar")
        clients.append(Client(name, bind))
    return Layout(BACKEND_IPS, port, tuple(clients))


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy, else MeshctlError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except (OSError, http.client.HTTPException):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise MeshctlError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class _Reply(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, Envoy's kept-alive upstream
    # connection waits out a delayed ACK (~40 ms) per request.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
        return


class NameServer:
    """An HTTP server (a thread of this process) answering every GET with its name, so whoever
    sends traffic through a proxy can tell which backend the proxy chose."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.server = http.server.ThreadingHTTPServer((host, port), _Reply)
        self.server.daemon_threads = True
        self.server.name = name  # type: ignore[attr-defined]
        self.port: int = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Backends:
    """One NameServer per reviews version, answering `reviews-vN` to every request."""

    def __init__(self, layout: Layout) -> None:
        self.servers = [NameServer(name, layout.backend(v), layout.backend_port) for name, v in zip(BACKENDS, VERSIONS)]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def stop_process(process: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGTERM by PID, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


@dataclass
class Envoy:
    """A running sidecar: its process, admin port and log."""

    name: str
    process: subprocess.Popen[bytes]
    admin_port: int
    log: Path

    def admin(self, path: str, timeout: float = 2.0) -> bytes:
        connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            connection.request("GET", "/" + path.lstrip("/"))
            return connection.getresponse().read()
        finally:
            connection.close()

    def alive(self) -> bool:
        return self.process.poll() is None


def request(bind: str, headers: dict[str, str] | None = None, timeout: float = 2.0) -> tuple[int, str]:
    """One request for reviews through a sidecar's outbound listener."""
    connection = http.client.HTTPConnection(bind, SERVICE_PORT, timeout=timeout)
    try:
        connection.request("GET", "/reviews/0", headers={"Host": "reviews", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


@dataclass
class LocalMesh:
    """Everything the demo runs, started in order and stopped in reverse."""

    workdir: Path
    client_names: tuple[str, ...] = ("productpage", "ratings")
    delta: bool = False
    layout: Layout = field(init=False)
    backends: Backends | None = field(default=None, init=False)
    serve: subprocess.Popen[bytes] | None = field(default=None, init=False)
    envoys: list[Envoy] = field(default_factory=list, init=False)
    xds_port: int = field(default=0, init=False)
    debug_port: int = field(default=0, init=False)
    _logs: list[IO[bytes]] = field(default_factory=list, init=False)

    @property
    def config_dir(self) -> Path:
        return self.workdir / "mesh"

    def start(self, progress: Callable[[str], None] = lambda _: None) -> LocalMesh:
        self.layout = plan_layout(self.client_names)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "workloads.yaml").write_text(workloads_yaml(self.layout))
        self.write_routing(None)
        progress("starting reviews v1, v2, v3")
        self.backends = Backends(self.layout)
        progress("starting meshctl serve")
        self._start_serve()
        for client in self.layout.clients:
            progress(f"starting the {client.pod} sidecar (Envoy)")
            self.envoys.append(self._start_envoy(client))
        for envoy, client in zip(self.envoys, self.layout.clients):
            wait_until(lambda: envoy.admin("ready").strip() == b"LIVE", 20, f"{envoy.name} to be ready")
            wait_until(lambda: request(client.bind)[0] == 200, 20, f"{envoy.name} to route to reviews")
        return self

    def _log(self, name: str) -> IO[bytes]:
        handle = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(handle)
        return handle

    def _start_serve(self) -> None:
        self.xds_port, self.debug_port = free_port(), free_port()
        argv = [sys.executable, "-m", "meshctl", "serve", "--config-dir", str(self.config_dir),
                "--xds-address", f"127.0.0.1:{self.xds_port}", "--debug-address", f"127.0.0.1:{self.debug_port}",
                "--debounce-after", "0"]
        self.serve = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self._log("serve"),
                                      start_new_session=True)
        wait_until(lambda: self._accepting(self.xds_port) or self._exited(self.serve, "meshctl serve"), 20,
                   "meshctl serve to listen")

    @staticmethod
    def _accepting(port: int) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    def _exited(self, process: subprocess.Popen[bytes] | None, what: str) -> bool:
        if process is not None and process.poll() is not None:
            raise MeshctlError(f"{what} exited with code {process.returncode}; see {self.workdir}")
        return False

    def _start_envoy(self, client: Client) -> Envoy:
        from google.protobuf import json_format

        from meshctl.config.loader import load
        from meshctl.generate.bootstrap import ads_bootstrap
        from meshctl.model.snapshot import build_snapshot

        snapshot = build_snapshot(load([str(self.config_dir)]).resources)
        proxy = snapshot.proxy(f"{client.pod}.default")
        admin_port = free_port()
        bootstrap = ads_bootstrap(proxy, "127.0.0.1", self.xds_port, admin_port=admin_port, delta=self.delta,
                                  service_account=proxy.workload.service_account if proxy.workload else "default")
        path = self.workdir / f"{client.pod}.json"
        path.write_text(json_format.MessageToJson(bootstrap))
        log = self.workdir / f"{client.pod}.envoy.log"
        process = subprocess.Popen(
            [find_envoy(), "-c", str(path), "--disable-hot-restart", "--concurrency", "1", "-l", "warning",
             "--log-path", str(log), "--drain-time-s", "1"],
            stdout=subprocess.DEVNULL, stderr=self._log(f"{client.pod}.envoy-stderr"), start_new_session=True,
        )
        return Envoy(client.pod, process, admin_port, log)

    def write_routing(self, split: dict[str, int] | None) -> None:
        """Replace the VirtualService file atomically, as an operator's editor or kubectl would."""
        target = self.config_dir / "routing.yaml"
        temporary = self.config_dir / ".routing.yaml.tmp"
        temporary.write_text(routing_yaml(split))
        os.replace(temporary, target)

    def sample(self, client: Client, count: int, headers: dict[str, str] | None = None) -> Counter[str]:
        """Send `count` requests through a sidecar; count the answers (status codes for errors)."""
        answers: Counter[str] = Counter()
        for _ in range(count):
            status, body = request(client.bind, headers)
            answers[body if status == 200 else f"HTTP {status}"] += 1
        return answers

    def syncz(self) -> list[dict[str, Any]]:
        """serve's view of every connected sidecar (`/debug/syncz`)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.debug_port, timeout=5)
        try:
            connection.request("GET", "/debug/syncz")
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def stop(self) -> None:
        for envoy in reversed(self.envoys):
            stop_process(envoy.process)
        if self.serve is not None:
            stop_process(self.serve)
        if self.backends is not None:
            self.backends.stop()
        for handle in self._logs:
            handle.close()

    def __enter__(self) -> LocalMesh:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
