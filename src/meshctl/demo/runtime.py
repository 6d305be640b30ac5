"""A whole mesh on one machine: meshctl serve, real Envoy sidecars and HTTP backends.

`LocalMesh` starts everything for the demo (and the end-to-end tests): backends answering with
their version, `meshctl serve` watching a config directory (its CA in `WORKDIR/ca`), and one
sidecar per client workload: `meshctl agent` with the workload's token, running its Envoy.
Every process it starts is tracked and ended by its PID when the mesh stops, whatever the
reason (an error, Ctrl-C).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshctl.demo.mesh import (
    BACKENDS,
    SERVICE_PORT,
    VERSIONS,
    Client,
    Layout,
    Server,
    authorization_yaml,
    routing_yaml,
    workloads_yaml,
)
from meshctl.errors import MeshctlError
from meshctl.loopback import (
    SEEN_CLIENT_CERT_HEADER,
    ControlPlane,
    NameServer,
    Processes,
    Sidecar,
    free_port,
    port_free,
    wait_until,
)

__all__ = [
    "BACKEND_IPS",
    "Backends",
    "LocalMesh",
    "caller_seen",
    "plaintext_to_server",
    "plan_layout",
    "request",
    "tls_handshakes",
]

BACKEND_IPS = ("127.0.0.21", "127.0.0.22", "127.0.0.23")


def plan_layout(client_names: Iterable[str]) -> Layout:
    """Addresses nobody uses right now: one backend port free on all backend IPs, and per client
    a loopback address whose service port is free (so sidecars can run side by side)."""
    for _ in range(50):
        port = free_port(BACKEND_IPS[0])
        if all(port_free(ip, port) for ip in BACKEND_IPS):
            break
    else:
        raise MeshctlError(f"no port is free on all of {', '.join(BACKEND_IPS)}")
    # Envoy binds with SO_REUSEPORT, so two meshes started at once on one host (parallel test
    # runs) that chose the same free address would silently share its connections: start the
    # search at a random address to make that unlikely.
    start = random.randrange(40, 250)
    candidates = (f"127.0.0.{40 + (start - 40 + n) % 210}" for n in range(210))
    binds = []
    names = tuple(client_names)
    for name in (*names, "details"):
        bind = next((ip for ip in candidates if port_free(ip, SERVICE_PORT)), None)
        if bind is None:
            raise MeshctlError(f"no loopback address has port {SERVICE_PORT} free for the {name} sidecar")
        binds.append(bind)
    clients = [Client(name, bind) for name, bind in zip(names, binds[:-1], strict=True)]
    server = Server(binds[-1], free_port(binds[-1]), free_port())
    return Layout(BACKEND_IPS, port, tuple(clients), server)


class Backends:
    """One NameServer per reviews version, answering `reviews-vN` to every request, and details'
    app behind its sidecar, answering `details`."""

    def __init__(self, layout: Layout) -> None:
        self.servers = [NameServer(name, layout.backend(v), layout.backend_port)
                        for name, v in zip(BACKENDS, VERSIONS, strict=True)]
        self.servers.append(NameServer(layout.server.name, "127.0.0.1", layout.server.app_port))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def request(bind: str, headers: dict[str, str] | None = None, timeout: float = 2.0, *,
            host: str = "reviews") -> tuple[int, str]:
    """One request for `host` (reviews unless said) through a sidecar's outbound listener."""
    status, body, _ = _get(bind, SERVICE_PORT, host, headers, timeout)
    return status, body


def caller_seen(bind: str, host: str, timeout: float = 2.0) -> tuple[int, str, str]:
    """One request for `host` through a sidecar: status, who answered, and the caller's SPIFFE
    ID as the server's sidecar forwarded it to the app ("" when it forwarded none)."""
    status, body, seen = _get(bind, SERVICE_PORT, host, None, timeout)
    return status, body, _uri(seen)


def plaintext_to_server(server: Server, timeout: float = 2.0) -> int:
    """A plaintext request straight at the server's sidecar, as a caller without a sidecar
    would send it: its status, 0 when the connection was refused or closed."""
    try:
        return _get(server.ip, server.inbound_port, server.name, None, timeout)[0]
    except (OSError, http.client.HTTPException):
        return 0


def tls_handshakes(envoy: Sidecar) -> int:
    """TLS handshakes an Envoy made or took: on its clusters (a client) and listeners (a server)."""
    return sum(int(value) for name, value in envoy.stats("ssl.handshake").items()
               if name.startswith(("cluster.outbound|", "listener.")) and name.endswith(".ssl.handshake"))


def _uri(client_cert: str) -> str:
    """The caller's URI in an `x-forwarded-client-cert` value (the last element: Envoy appends)."""
    last = client_cert.split(",")[-1]
    return next((part[4:] for part in last.split(";") if part.startswith("URI=")), "")


def _get(address: str, port: int, host: str, headers: dict[str, str] | None,
         timeout: float) -> tuple[int, str, str]:
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", f"/{host}/0", headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
        return response.status, body, response.getheader(SEEN_CLIENT_CERT_HEADER, "")
    finally:
        connection.close()


@dataclass
class LocalMesh:
    """Everything the demo runs, started in order and stopped in reverse."""

    workdir: Path
    client_names: tuple[str, ...] = ("productpage", "ratings")
    delta: bool = False
    serve_preexec: Callable[[], None] | None = None  # run in serve's process before it starts (tests)
    layout: Layout = field(init=False)
    backends: Backends | None = field(default=None, init=False)
    plane: ControlPlane | None = field(default=None, init=False)
    envoys: list[Sidecar] = field(default_factory=list, init=False)  # the clients', then details'.
    _processes: Processes = field(default_factory=Processes, init=False)

    @property
    def config_dir(self) -> Path:
        return self.workdir / "mesh"

    @property
    def serve(self) -> subprocess.Popen[bytes] | None:
        """serve's process, once started."""
        return self.plane.process if self.plane is not None else None

    @property
    def xds_port(self) -> int:
        assert self.plane is not None
        return self.plane.xds_port

    @property
    def debug_port(self) -> int:
        assert self.plane is not None
        return self.plane.debug_port

    def start(self, progress: Callable[[str], None] = lambda _: None) -> LocalMesh:
        self.layout = plan_layout(self.client_names)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "workloads.yaml").write_text(workloads_yaml(self.layout))
        self.write_routing(None)
        progress("starting reviews v1, v2, v3")
        self.backends = Backends(self.layout)
        progress("starting meshctl serve and the sidecars (meshctl agent running Envoy)")
        self.plane = ControlPlane(self._processes.start, self.config_dir, self.workdir / "ca",
                                  self.workdir / "serve.log", extra=["--debounce-after", "0"], new_session=True,
                                  preexec=self.serve_preexec)
        self.envoys.extend(self._start_sidecar(self.plane, workload) for workload in self.layout.workloads)
        for envoy in self.envoys:
            envoy.wait_ready(30)
        self.wait_routed()
        return self

    def wait_routed(self) -> None:
        """Until every client reaches reviews, and the first one details."""
        for client in self.layout.clients:
            wait_until(lambda: self.requests(client, 1)[0][0] == 200, 20, what=f"{client.pod} to route to reviews")
        first = self.layout.clients[0]
        wait_until(lambda: self.requests(first, 1, host="details")[0][0] == 200, 20,
                   what=f"{first.pod} to reach details")

    def _start_sidecar(self, serve: ControlPlane, workload: Client | Server) -> Sidecar:
        """`meshctl agent` for a workload, with a token for its service account, as the pod's
        istio-proxy container would run (told its account, as Kubernetes' downward API tells
        istio-agent, rather than reading the whole mesh config)."""
        token = serve.token("default", workload.service_account, self.workdir / f"{workload.pod}.token",
                            pod=workload.pod)
        return serve.sidecar(f"{workload.pod}.default", self.workdir, workload.pod, token,
                             service_account=workload.service_account, delta=self.delta, new_session=True)

    def write_authorization(self, allowed: list[Client]) -> None:
        """Replace details' AuthorizationPolicy atomically: only `allowed` may call it."""
        target = self.config_dir / "authorization.yaml"
        temporary = self.config_dir / ".authorization.yaml.tmp"
        temporary.write_text(authorization_yaml(self.layout.server, allowed))
        os.replace(temporary, target)

    def write_routing(self, split: dict[str, int] | None) -> None:
        """Replace the VirtualService file atomically, as an operator's editor or kubectl would."""
        target = self.config_dir / "routing.yaml"
        temporary = self.config_dir / ".routing.yaml.tmp"
        temporary.write_text(routing_yaml(split))
        os.replace(temporary, target)

    def requests(self, client: Client, count: int, headers: dict[str, str] | None = None, *,
                 host: str = "reviews") -> list[tuple[int, str]]:
        """`count` requests for `host` by a client workload, through its sidecar."""
        return [request(client.bind, headers, host=host) for _ in range(count)]

    def sample(self, client: Client, count: int, headers: dict[str, str] | None = None, *,
               host: str = "reviews") -> Counter[str]:
        """Send `count` requests through a sidecar; count the answers (status codes for errors)."""
        answers: Counter[str] = Counter()
        for status, body in self.requests(client, count, headers, host=host):
            answers[body if status == 200 else f"HTTP {status}"] += 1
        return answers

    def seen_by_server(self, client: Client) -> tuple[int, str, str]:
        """One request from `client` to the server (details) through its sidecar: the status,
        who answered, and the caller's SPIFFE ID as the server's sidecar forwarded it."""
        return caller_seen(client.bind, self.layout.server.name)

    def plaintext_to_server(self) -> int:
        """A plaintext request straight at the server's sidecar from a caller without one."""
        return plaintext_to_server(self.layout.server)

    def handshakes(self) -> list[tuple[str, int]]:
        """TLS handshakes each sidecar made or took so far, by pod."""
        return [(workload.pod, tls_handshakes(envoy))
                for envoy, workload in zip(self.envoys, self.layout.workloads, strict=True)]

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
            envoy.stop()
        self._processes.stop()
        if self.backends is not None:
            self.backends.stop()

    def __enter__(self) -> LocalMesh:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
