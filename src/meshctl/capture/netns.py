"""Network namespaces made for a while and removed by name: the capture tests' pods and the
`meshctl demo --capture` mesh.

The process stays in its own namespace; it starts programs inside one with `ip netns exec`
(as another user through `setpriv`), and opens sockets inside one from a thread that entered
it (a socket stays in the namespace it was made in), so HTTP servers and requests in a
namespace need no extra processes. Needs root, `ip` (iproute2) and `setpriv` (util-linux).
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from meshctl.capture.pod import enter_network_namespace

if TYPE_CHECKING:
    from meshctl.loopback import Sidecar

__all__ = ["Forward", "Netns", "as_user", "link", "namespaces", "pod_sidecar"]

T = TypeVar("T")


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

    def route_between_links(self) -> None:
        """Turn on IPv4 forwarding here (a fresh namespace starts with it off), so this
        namespace routes between the pods linked to it, as a node routes between its pods."""
        def forward() -> None:
            Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")  # this thread's namespace's sysctl
        self.call(forward)

    def hosts(self, entries: Mapping[str, str]) -> None:
        """/etc/hosts as programs run by `ip netns exec` see it (it bind-mounts /etc/netns/NAME)."""
        directory = Path("/etc/netns") / self.name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hosts").write_text("".join(f"{ip} {name}\n" for name, ip in entries.items()))

    def get(self, host: str, port: int, path: str, timeout: float = 5.0,
            headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        """One GET from inside the namespace, as this process's user."""
        def request() -> tuple[int, str]:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                connection.request("GET", path, headers=dict(headers or {}))
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


class Forward:
    """A port of a namespace on this host's loopback (what `kubectl port-forward` does for a
    pod): each connection to 127.0.0.1:`port` is joined to `host`:`target_port` inside `netns`,
    so gRPC and HTTP clients of this process reach a server there without entering it."""

    def __init__(self, netns: Netns, host: str, target_port: int) -> None:
        import socket

        self._target = (netns, host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name=f"forward {netns.name}", daemon=True).start()

    def _accept(self) -> None:
        import socket

        netns, host, port = self._target
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = netns.call(lambda: socket.create_connection((host, port), timeout=5))
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._listener.close()


def _pump(source: Any, sink: Any) -> None:
    """Copy bytes one way until either side closes, then close both."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.close()


def pod_sidecar(stack: contextlib.ExitStack, netns: Netns, target: str, proxy: tuple[int, int], *, ca_dir: Path,
                config: Path, account: str, xds_address: str, ca_address: str, interception: str,
                delta: bool = False) -> Sidecar:
    """`meshctl agent` in `netns` as the proxy user (`proxy`: uid, gid), as istio-proxy runs in a
    pod: its token, the mesh root and the mesh config (standing in for what the downward API
    tells istio-agent: IP, labels, account) copied where that user can read them, whatever the
    caller's directories allow. Stopped, and its files removed, when `stack` closes; its work
    directory (`sidecar.workdir`) holds the agent's log until then."""
    import os
    import tempfile

    from meshctl.loopback import Sidecar, mint_token

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
                            interception=interception, delta=delta, new_session=True,
                            wrap=lambda argv: netns.argv(argv, *proxy), owner=proxy)
    stack.callback(sidecar.stop)
    return sidecar
