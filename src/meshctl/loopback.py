"""Real processes on this machine's loopback: the demo's, the tests' and the benchmarks'.

`meshctl demo`, the end-to-end tests and the benchmarks all run a control plane, real Envoys
and HTTP backends side by side on 127.0.0.0/8. What they share lives here, once: free ports,
polling until something is ready (`wait_until`), starting Envoy (the binary `find_envoy`
locates, `$MESHCTL_ENVOY` first), small HTTP backends that answer with their name, and ending
every process started by its PID, also when a run fails half-way.
"""

from __future__ import annotations

import http.client
import http.server
import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from meshctl.envoybin import find_envoy
from meshctl.errors import MeshctlError

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = [
    "Envoy",
    "NameServer",
    "Processes",
    "WaitTimeout",
    "accepting",
    "ensure_running",
    "free_port",
    "http_get",
    "port_free",
    "stop_process",
    "wait_accepting",
    "wait_until",
]

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
# What a check may raise while the thing it waits for is not up yet: refused or reset
# connections, half-written answers, a key not there yet.
_NOT_YET = (OSError, http.client.HTTPException, ValueError, KeyError)


class WaitTimeout(MeshctlError):
    """What was waited for did not happen in time."""


def wait_until(check: Callable[[], T], timeout: float = 10.0, *, what: str = "condition", interval: float = 0.02) -> T:
    """Call `check` every `interval` seconds until it returns something truthy, and return that.

    A check that raises one of the errors of something not up yet (connection refused, a key
    not there yet) counts as falsy; any other exception ends the wait. On timeout, raises
    WaitTimeout naming `what`, and the last error if the last call raised one.
    """
    deadline = time.monotonic() + timeout
    while True:
        failure: BaseException | None = None
        try:
            found = check()
        except _NOT_YET as exc:
            failure = exc
        else:
            if found:
                return found
        if time.monotonic() > deadline:
            last = f" (last error: {failure!r})" if failure is not None else ""
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}{last}")
        time.sleep(interval)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now on `host` (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """Whether a listener could bind `host:port` now (as Envoy does, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def accepting(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on `host:port`."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def wait_accepting(
    port: int, timeout: float, process: subprocess.Popen[Any], what: str, *, logs: Sequence[Path] = (),
    interval: float = 0.002,
) -> None:
    """Until `process` (`what`, for messages) accepts connections on 127.0.0.1:`port`; raises
    at once, with the end of its `logs`, if it exits instead."""
    wait_until(lambda: ensure_running(process, what, logs) and accepting(port), timeout, what=f"{what} to listen",
               interval=interval)


def ensure_running(process: subprocess.Popen[Any], what: str, logs: Sequence[Path] = ()) -> bool:
    """True while `process` runs. Once it has exited, raises MeshctlError naming `what`, with
    the end of each of its `logs`: a wait for something a dead process would do fails at once."""
    if process.poll() is None:
        return True
    tails = [path.read_text(errors="replace")[-3000:] for path in logs if path.exists()]
    details = "".join(f"\n{tail}" for tail in tails if tail)
    raise MeshctlError(f"{what} exited with code {process.returncode}{details}")


def http_get(url: str, timeout: float = 2.0, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of one GET; status 0 when the connection itself failed."""
    try:
        request = urllib.request.Request(url, headers=dict(headers or {}))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return 0, ""


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


class Processes:
    """Processes started through it (`start`) or handed to it (`add`), all ended by PID on
    `stop`, newest first (a client before the server it talks to); a context manager that
    stops them on exit."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
        return self.add(subprocess.Popen(argv, **popen))

    def add(self, process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.started.append(process)
        return process

    def stop(self) -> None:
        while self.started:
            stop_process(self.started.pop())

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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

    def __init__(self, name: str, host: str = LOOPBACK, port: int = 0) -> None:
        self.name = name
        self.server = http.server.ThreadingHTTPServer((host, port), _Reply)
        self.server.daemon_threads = True
        self.server.name = name  # type: ignore[attr-defined]
        self.port: int = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Envoy:
    """One Envoy process and its admin API, started by `Envoy.start`.

    Envoy runs as a sidecar would on a shared host: its own admin port (the one the bootstrap
    names, or any free one for port 0), one worker, no hot restart (several run side by side),
    a one-second drain. Files go to the work directory as `NAME.json` or `NAME.yaml` (the
    bootstrap), `NAME.log` (Envoy's log), `NAME.stderr` and `NAME.admin` (the admin address).
    """

    def __init__(self, name: str, process: subprocess.Popen[bytes], workdir: Path) -> None:
        self.name = name
        self.process = process
        self.workdir = workdir
        self._admin_port = 0

    @classmethod
    def start(
        cls, bootstrap: Message | str, workdir: Path, name: str, *, log_level: str = "warning",
        new_session: bool = False,
    ) -> Envoy:
        """Start Envoy on `bootstrap`: a message, or YAML (or JSON) text. `new_session` keeps it
        out of the caller's process group, so a Ctrl-C reaches only the caller, which stops it."""
        if isinstance(bootstrap, str):
            config = workdir / f"{name}.yaml"
            config.write_text(bootstrap)
        else:
            from google.protobuf import json_format

            config = workdir / f"{name}.json"
            config.write_text(json_format.MessageToJson(bootstrap))
        argv = [
            find_envoy(), "-c", str(config), "--disable-hot-restart", "--concurrency", "1", "-l", log_level,
            "--drain-time-s", "1", "--log-path", str(workdir / f"{name}.log"),
            "--admin-address-path", str(workdir / f"{name}.admin"),
        ]  # fmt: skip
        with (workdir / f"{name}.stderr").open("wb") as stderr:
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=new_session)
        return cls(name, process, workdir)

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def admin_port(self) -> int:
        """The admin port, once Envoy has opened it (waited for, up to 10 seconds)."""
        if not self._admin_port:
            address = wait_until(self._admin_address, 10, what=f"{self.name}'s admin address")
            self._admin_port = int(address.rsplit(":", 1)[1])
        return self._admin_port

    @property
    def admin_url(self) -> str:
        return f"http://{LOOPBACK}:{self.admin_port}"

    def admin(self, path: str, timeout: float = 5.0) -> bytes:
        """The body of `GET /path` on the admin API."""
        with urllib.request.urlopen(f"{self.admin_url}/{path.lstrip('/')}", timeout=timeout) as response:
            return bytes(response.read())

    def alive(self) -> bool:
        return self.process.poll() is None

    def is_live(self) -> bool:
        """Whether `/ready` says LIVE (every initial resource arrived or timed out)."""
        try:
            return self.admin("ready", timeout=1).strip() == b"LIVE"
        except urllib.error.HTTPError:
            return False

    def wait_live(self, timeout: float = 10.0) -> Envoy:
        """Until `/ready` says LIVE; raises with Envoy's last words if it exits first."""
        wait_until(lambda: self._running() and self.is_live(), timeout, what=f"{self.name} /ready LIVE")
        return self

    def config_dump(self, include_eds: bool = False) -> dict[str, Any]:
        return dict(json.loads(self.admin("config_dump" + ("?include_eds" if include_eds else ""))))

    def stats(self, prefix: str) -> dict[str, str]:
        """Stats whose name contains `prefix`, as name → value text."""
        found = {}
        for line in self.admin(f"stats?filter={prefix}").decode().splitlines():
            name, _, value = line.partition(": ")
            found[name] = value
        return found

    def stop(self) -> None:
        stop_process(self.process)

    def _admin_address(self) -> str:
        self._running()
        return (self.workdir / f"{self.name}.admin").read_text().strip()

    def _running(self) -> bool:
        return ensure_running(self.process, f"Envoy {self.name}", (self.log, self.workdir / f"{self.name}.stderr"))

