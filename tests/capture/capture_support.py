"""Network namespaces for the capture tests: made per test module, removed by name afterwards.

A test process runs as root in the host namespace; it starts programs inside a namespace with
`ip netns exec` (optionally as another user through `setpriv`), and opens sockets inside one
from a thread that entered it (a socket stays in the namespace it was made in), so in-process
HTTP servers and admin requests need no extra processes.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from meshctl.capture.pod import enter_network_namespace
from meshctl.loopback import Sidecar, mint_token

T = TypeVar("T")
REQUIRED = ("ip", "iptables", "iptables-restore", "iptables-save", "setpriv")
REQUIRE_VARIABLE = "MESHCTL_REQUIRE_CAPTURE"


def require_capture_support() -> None:
    """Skip (with the reason printed) when this machine cannot run capture tests; fail instead
    under CI (`MESHCTL_REQUIRE_CAPTURE=1`, set by .ci/run) or as root, where they must run."""
    missing = [tool for tool in REQUIRED if shutil.which(tool) is None]
    problem = ""
    if os.geteuid() != 0:
        problem = "capture tests need root (network namespaces, iptables, other users)"
    elif missing:
        problem = f"capture tests need {', '.join(missing)} (Debian: apt-get install iptables iproute2 util-linux)"
    if not problem:
        return
    if os.environ.get(REQUIRE_VARIABLE) == "1" or os.geteuid() == 0:
        pytest.fail(f"{problem}; {REQUIRE_VARIABLE}=1 (CI) or root requires them to run", pytrace=False)
    pytest.skip(f"{problem}: run the suite as root (CI does) to include them")


def as_user(uid: int | None, gid: int | None) -> list[str]:
    """A `setpriv` prefix running a command with these ids (and no supplementary groups)."""
    if uid is None and gid is None:
        return []
    ids = ([f"--reuid={uid}"] if uid is not None else []) + ([f"--regid={gid}"] if gid is not None else [])
    return ["setpriv", *ids, "--clear-groups"]


@dataclass(frozen=True)
class Netns:
    name: str

    @property
    def path(self) -> str:
        return f"/var/run/netns/{self.name}"

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True, text=True)

    def argv(self, argv: Sequence[str], uid: int | None = None, gid: int | None = None) -> list[str]:
        return ["ip", "netns", "exec", self.name, *as_user(uid, gid), *argv]

    def run(self, argv: Sequence[str], uid: int | None = None, gid: int | None = None,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(argv, uid, gid), capture_output=True, text=True, check=False, **kwargs)

    def call(self, function: Callable[[], T]) -> T:
        """`function()` on a thread inside this namespace (sockets it opens stay there)."""
        result: list[T] = []
        errors: list[BaseException] = []

        def inside() -> None:
            try:
                enter_network_namespace(self.path)
                result.append(function())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=inside, name=f"in {self.name}")
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]

    def hosts(self, entries: dict[str, str]) -> None:
        """/etc/hosts as programs run by `ip netns exec` see it (it bind-mounts /etc/netns/NAME)."""
        directory = Path("/etc/netns") / self.name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hosts").write_text("".join(f"{ip} {name}\n" for name, ip in entries.items()))

    def get(self, host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """One GET from inside the namespace, as root (so never captured: loopback or RETURN)."""
        def request() -> tuple[int, str]:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                return response.status, response.read().decode()
            finally:
                connection.close()
        return self.call(request)


@contextlib.contextmanager
def namespaces(*names: str) -> Iterator[list[Netns]]:
    """Fresh namespaces with `lo` up; deleted (with their /etc/netns files) on exit."""
    made: list[Netns] = []
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            made.append(Netns(name))
            made[-1].ip("link", "set", "lo", "up")
        yield made
    finally:
        for netns in made:
            subprocess.run(["ip", "netns", "del", netns.name], check=False, capture_output=True)
            shutil.rmtree(Path("/etc/netns") / netns.name, ignore_errors=True)


def link(a: Netns, a_address: str, b: Netns, b_address: str) -> None:
    """A veth pair between two namespaces, addressed (CIDR notation) and up; each end is named
    after the namespace it leads to, so one namespace can link to several."""
    a_end, b_end = f"to{b.name[-13:]}", f"to{a.name[-13:]}"
    subprocess.run(["ip", "link", "add", a_end, "netns", a.name, "type", "veth", "peer", "name", b_end,
                    "netns", b.name], check=True, capture_output=True)
    for netns, end, address in ((a, a_end, a_address), (b, b_end, b_address)):
        netns.ip("addr", "add", address, "dev", end)
        netns.ip("link", "set", end, "up")


class _Peer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = f"{self.server.name} {self.client_address[0]}".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
        return


class PeerServer:
    """An HTTP server answering `NAME PEER-ADDRESS`: who answered, and whom it saw calling
    (the pod IP, 127.0.0.6 behind Envoy's inbound, or the client itself under TPROXY)."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.server = http.server.ThreadingHTTPServer((host, port), _Peer)
        self.server.daemon_threads = True
        self.server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pod_sidecar(stack: contextlib.ExitStack, netns: Netns, target: str, proxy: tuple[int, int], *, ca_dir: Path,
                config: Path, account: str, xds_address: str, ca_address: str, interception: str) -> Sidecar:
    """`meshctl agent` in `netns` as the proxy user (`proxy`: uid, gid), as istio-proxy runs in a
    pod: its token, the mesh root and the mesh config (standing in for what the downward API
    tells istio-agent: IP, labels, account) copied where that user can read them. Stopped, and
    its files removed, when `stack` closes."""
    home = Path(tempfile.mkdtemp(prefix="meshctl-pod-"))
    stack.callback(shutil.rmtree, home, ignore_errors=True)
    pod = target.split(".")[0]
    token = mint_token(ca_dir, target.rsplit(".", 1)[-1], account, home / "istio-token", pod=pod)
    root = Path(shutil.copy(ca_dir / "root-cert.pem", home / "root-cert.pem"))
    mesh = Path(shutil.copytree(config, home / "mesh"))
    for path in (home, token, root, mesh, *mesh.iterdir()):
        os.chown(path, *proxy)
    sidecar = Sidecar.start(target, home, "proxy", xds_address=xds_address, ca_address=ca_address, ca_root=root,
                            token_file=token, config_dir=mesh, admin_port=15000, status_port=15021,
                            interception=interception, wrap=lambda argv: netns.argv(argv, *proxy), owner=proxy)
    stack.callback(sidecar.stop)
    return sidecar
