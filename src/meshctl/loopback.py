"""Real processes on this machine's loopback: the demo's, the tests' and the benchmarks'.

`meshctl demo`, the end-to-end tests and the benchmarks all run a control plane, real Envoys
and HTTP backends side by side on 127.0.0.0/8. What they share lives here, once: free ports,
polling until something is ready (`wait_until`), starting Envoy (the binary `find_envoy`
locates, `$MESHCTL_ENVOY` first) or a sidecar (`meshctl agent` running its Envoy, with a token
minted from serve's CA directory), small HTTP backends that answer with their name, and ending
every process started by its PID, also when a run fails half-way.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
    "ControlPlane",
    "Envoy",
    "NameServer",
    "Processes",
    "SEEN_CLIENT_CERT_HEADER",
    "Sidecar",
    "WaitTimeout",
    "accepting",
    "ensure_running",
    "free_port",
    "http_get",
    "mint_token",
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


# Ports Istio's processes listen on (15000-15099): a real mesh on this machine may hold them.
_MESH_PORTS = range(15000, 15100)
_picked: set[int] = set()
_picking = threading.Lock()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody uses right now on `host` or on the wildcard address, chosen below the
    kernel's ephemeral range.

    A port the kernel picks itself (bind to port 0) is an ephemeral one: between this call and
    the caller's bind, any process's next outgoing connection may take it as its source port,
    and a connection's source port blocks a wildcard listener (the agent's status port) even
    with SO_REUSEADDR. Outside that range only another listener can take it. Never the same
    port twice in one process.
    """
    low = _ephemeral_low()
    with _picking:
        for _ in range(500):
            port = random.randrange(max(1024, low - 20000), low) if low > 2048 else _kernel_port(host)
            if port in _picked or port in _MESH_PORTS:
                continue
            if port_free(host, port, reuse=False) and port_free("0.0.0.0", port, reuse=False):
                _picked.add(port)
                return port
    raise MeshctlError(f"no free TCP port on {host} below {low}")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _kernel_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int, *, reuse: bool = True) -> bool:
    """Whether a listener could bind `host:port` now (as Envoy does, with SO_REUSEADDR; without
    it, also no connection lingering in TIME_WAIT holds the port)."""
    with socket.socket() as sock:
        if reuse:
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
    """(status, body) of one GET (with `headers`, such as the Host a route matches); status 0
    when the connection itself failed."""
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


CLIENT_CERT_HEADER = "x-forwarded-client-cert"
SEEN_CLIENT_CERT_HEADER = "x-seen-client-cert"


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
        caller = self.headers.get(CLIENT_CERT_HEADER)
        if caller:
            self.send_header(SEEN_CLIENT_CERT_HEADER, caller)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
        return


class NameServer:
    """An HTTP server (a thread of this process) answering every GET with its name, so whoever
    sends traffic through a proxy can tell which backend the proxy chose; behind a sidecar, it
    also says who its sidecar said was calling (the `x-forwarded-client-cert` it received, as
    `x-seen-client-cert` in the answer)."""

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


class EnvoyAdmin:
    """Asking a running Envoy through its admin API (on 127.0.0.1, `admin_port`)."""

    name = "envoy"

    @property
    def admin_port(self) -> int:
        raise NotImplementedError

    @property
    def admin_url(self) -> str:
        return f"http://{LOOPBACK}:{self.admin_port}"

    def admin(self, path: str, timeout: float = 5.0) -> bytes:
        """The body of `GET /path` on the admin API."""
        with urllib.request.urlopen(f"{self.admin_url}/{path.lstrip('/')}", timeout=timeout) as response:
            return bytes(response.read())

    def is_live(self) -> bool:
        """Whether `/ready` says LIVE (every initial resource arrived or timed out)."""
        try:
            return self.admin("ready", timeout=1).strip() == b"LIVE"
        except urllib.error.HTTPError:
            return False

    def config_dump(self, include_eds: bool = False) -> dict[str, Any]:
        return dict(json.loads(self.admin("config_dump" + ("?include_eds" if include_eds else ""))))

    def stats(self, prefix: str) -> dict[str, str]:
        """Stats whose name contains `prefix`, as name → value text."""
        found = {}
        for line in self.admin(f"stats?filter={prefix}").decode().splitlines():
            name, _, value = line.partition(": ")
            found[name] = value
        return found


class Envoy(EnvoyAdmin):
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

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_live(self, timeout: float = 10.0) -> Envoy:
        """Until `/ready` says LIVE; raises with Envoy's last words if it exits first."""
        wait_until(lambda: self._running() and self.is_live(), timeout, what=f"{self.name} /ready LIVE")
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def _admin_address(self) -> str:
        self._running()
        return (self.workdir / f"{self.name}.admin").read_text().strip()

    def _running(self) -> bool:
        return ensure_running(self.process, f"Envoy {self.name}", (self.log, self.workdir / f"{self.name}.stderr"))


def mint_token(ca_dir: Path, namespace: str, service_account: str, path: Path, *, pod: str = "",
               ttl: int = 3600) -> Path:
    """Write a token for `namespace/service_account` (as `meshctl token` prints it) to `path`,
    readable by its owner only; the CA directory must exist (serve creates it)."""
    from meshctl.security.cadir import read_token_key
    from meshctl.security.tokens import TokenSigner

    token = TokenSigner(read_token_key(ca_dir)).mint(namespace, service_account, pod=pod, ttl=ttl)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return path


class Sidecar(EnvoyAdmin):
    """`meshctl agent` running one workload's Envoy, as a pod's istio-proxy container does.

    The agent gets its token from a file, verifies the CA with serve's root, serves SDS on a
    short socket path of its own (Unix socket paths are limited to 107 bytes, test directories
    can be longer) and keeps Envoy's bootstrap and pid file in `WORKDIR/NAME/`. Its log (with
    Envoy's, which writes to the agent's stderr) is `WORKDIR/NAME.agent.log`. `restart`
    starts a new agent for the same Envoy, as after `kill -9` of the old one.
    """

    def __init__(self, name: str, argv: list[str], workdir: Path, admin_port: int, status_port: int, socket_dir: Path,
                 new_session: bool) -> None:
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self._admin = admin_port
        self.status_port = status_port
        self.socket_dir = socket_dir
        self.new_session = new_session
        self.process = self._launch()

    @classmethod
    def start(
        cls, target: str, workdir: Path, name: str, *, xds_address: str, ca_address: str, ca_root: Path,
        token_file: Path, config_dir: Path | None = None, service_account: str = "", admin_port: int = 0,
        status_port: int = 0, delta: bool = False, secret_ttl: str = "24h", log_level: str = "info",
        interception: str = "NONE", new_session: bool = False, wrap: Callable[[list[str]], list[str]] | None = None,
        owner: tuple[int, int] | None = None, more_xds: Sequence[str] = (), extra: Sequence[str] = (),
    ) -> Sidecar:
        """Start the agent (`extra`: more of its flags). `wrap` turns its command line into the
        one to run (in a network namespace, as another user); `owner` is that user, given its
        work and socket directories."""
        socket_dir = Path(tempfile.mkdtemp(prefix="meshctl-sds-"))
        home = workdir / name
        home.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            for directory in (socket_dir, home):
                os.chown(directory, *owner)
        admin_port = admin_port or free_port()
        status_port = status_port or free_port()
        argv = [
            sys.executable, "-m", "meshctl", "agent", target, "--xds-address", xds_address, "--ca-address", ca_address,
            "--ca-root-cert", str(ca_root), "--token-file", str(token_file), "--admin-port", str(admin_port),
            "--status-port", str(status_port), "--sds-socket", str(socket_dir / "socket"), "--workdir", str(home),
            "--interception-mode", interception, "--concurrency", "1", "--secret-ttl", secret_ttl,
            "--termination-drain-duration", "0s", "--log-level", log_level,
        ]  # fmt: skip
        for address in more_xds:
            argv += ["--xds-address", address]
        if config_dir is not None:
            argv += ["--config-dir", str(config_dir)]
        if service_account:
            argv += ["--service-account", service_account]
        if delta:
            argv.append("--delta")
        argv.extend(extra)
        return cls(name, wrap(argv) if wrap else argv, workdir, admin_port, status_port, socket_dir, new_session)

    def _launch(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            return subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=self.new_session)

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.agent.log"

    @property
    def admin_port(self) -> int:
        return self._admin

    @property
    def envoy_pid(self) -> int:
        """Envoy's pid, from the agent's pid file (waited for)."""
        pid_file = self.workdir / self.name / "envoy.pid"
        pid = wait_until(lambda: self._running() and pid_file.read_text().strip(), 10, what=f"{self.name}'s Envoy")
        return int(pid)

    def ready(self) -> bool:
        """What the agent's `/healthz/ready` says."""
        return http_get(f"http://{LOOPBACK}:{self.status_port}/healthz/ready", timeout=1)[0] == 200

    def wait_ready(self, timeout: float = 20.0) -> Sidecar:
        """Until the agent says ready (Envoy LIVE with its certificate); raises with the agent's
        last words if it exits first."""
        wait_until(lambda: self._running() and self.ready(), timeout, what=f"{self.name} /healthz/ready")
        return self

    def restart(self) -> Sidecar:
        """A new agent with the same flags: it takes over the running Envoy, if there is one."""
        self.process = self._launch()
        return self

    def kill_agent(self) -> None:
        """SIGKILL the agent alone; its Envoy keeps running."""
        self.process.kill()
        self.process.wait(5)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the agent (it stops its Envoy), or, with the agent gone, the Envoy it left."""
        if self.alive():
            stop_process(self.process, timeout=15)
        pid_file = self.workdir / self.name / "envoy.pid"
        if pid_file.exists():
            _kill_orphan(int(pid_file.read_text().strip() or 0), self.workdir / self.name / "envoy-rev.json")
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _running(self) -> bool:
        return ensure_running(self.process, f"meshctl agent {self.name}", (self.log,))


def _kill_orphan(pid: int, bootstrap: Path) -> None:
    """End an Envoy whose agent died before stopping it (only if `pid` still runs `bootstrap`)."""
    from meshctl.agent.envoy import runs_bootstrap

    if pid and runs_bootstrap(pid, bootstrap):
        os.kill(pid, signal.SIGKILL)


class ControlPlane:
    """`meshctl serve` on free ports (xDS unless given, debug HTTP, its CA on TLS) with the CA
    kept in `ca_dir`, started through `start` (Processes.start: it ends it), output in `log`;
    `preexec` runs in serve's process before it starts (tests drop its privileges there).

    The CA directory is made first, here, as serve would make it: tokens can be minted at once,
    and sidecars started side by side with serve (agents retry the CA, Envoy retries xDS)."""

    def __init__(self, start: Callable[..., subprocess.Popen[bytes]], config_dir: Path, ca_dir: Path, log: Path, *,
                 xds_port: int = 0, extra: Sequence[str] = (), new_session: bool = False,
                 preexec: Callable[[], None] | None = None) -> None:
        from meshctl.security.cadir import open_ca_directory

        self.config_dir = config_dir
        self.ca_dir = ca_dir
        self.log = log
        self.xds_port, self.debug_port, self.ca_port = xds_port or free_port(), free_port(), free_port()
        open_ca_directory(ca_dir, "cluster.local")
        argv = [sys.executable, "-m", "meshctl", "serve", "--config-dir", str(config_dir),
                "--xds-address", self.xds_address, "--debug-address", f"{LOOPBACK}:{self.debug_port}",
                "--ca-address", self.ca_address, "--ca-dir", str(ca_dir), *extra]
        with log.open("ab") as output:
            self.process = start(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                 start_new_session=new_session, preexec_fn=preexec)

    @property
    def xds_address(self) -> str:
        return f"{LOOPBACK}:{self.xds_port}"

    @property
    def ca_address(self) -> str:
        return f"{LOOPBACK}:{self.ca_port}"

    @property
    def debug_url(self) -> str:
        return f"http://{LOOPBACK}:{self.debug_port}"

    def wait_ready(self, timeout: float = 30.0) -> ControlPlane:
        """Until serve has accepted its first configuration and its CA listens."""
        wait_until(lambda: ensure_running(self.process, "meshctl serve", [self.log])
                   and http_get(f"{self.debug_url}/ready")[0] == 200 and accepting(self.ca_port), timeout,
                   what="meshctl serve /ready and its CA")
        return self

    def token(self, namespace: str, service_account: str, path: Path, *, pod: str = "") -> Path:
        return mint_token(self.ca_dir, namespace, service_account, path, pod=pod)

    def sidecar(self, target: str, workdir: Path, name: str, token_file: Path, **options: Any) -> Sidecar:
        """`meshctl agent` for `target`, pointed at this serve and its CA."""
        return Sidecar.start(target, workdir, name, xds_address=self.xds_address, ca_address=self.ca_address,
                             ca_root=self.ca_dir / "root-cert.pem", token_file=token_file, **options)
