"""The demo mesh with real traffic capture (`meshctl demo --capture`, as root).

Each pod (the clients and details) gets a network namespace (10.78.N.2) joined by a veth to a
node namespace (10.78.N.1) that holds `meshctl serve` and the reviews backends (10.78.100.21-23). In each pod,
`meshctl iptables` runs with the arguments kube-inject gives istio-init, and `meshctl agent`
runs the pod's Envoy as the proxy user (1337) in REDIRECT mode, with a token for the pod's
service account, as istio-proxy does. The demo's requests leave the
pod for the reviews or details ClusterIP (10.96.0.50, 10.96.0.60, routed nowhere): only capture
makes them arrive, on Envoy's 15001, which routes them by the VirtualService like any sidecar;
details' own sidecar takes its inbound calls on 15006 (capture again) and judges them by the
caller's mTLS identity before its app (0.0.0.0:9080 in its pod) sees them.

The namespaces live only while the demo runs and are removed by name, with every process,
even on Ctrl-C. serve's xDS port is forwarded to this host's loopback, so `proxy-status` asks
it exactly as in the demo without capture.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshctl.capture.netns import Forward, Netns, link, namespaces, pod_sidecar
from meshctl.demo.mesh import BACKENDS, CLUSTER_IPS, SERVICE_PORT, VERSIONS, Client, Layout, Server, workloads_yaml
from meshctl.demo.runtime import LocalMesh, caller_seen, plaintext_to_server, request, tls_handshakes
from meshctl.errors import MeshctlError
from meshctl.loopback import NameServer, Sidecar, accepting, ensure_running, wait_until

__all__ = ["BACKEND_IPS", "CA_PORT", "CapturedMesh", "PROXY_IDS", "REQUIRED_TOOLS", "XDS_PORT", "capture_problem"]

BACKEND_IPS = ("10.78.100.21", "10.78.100.22", "10.78.100.23")
PROXY_IDS = (1337, 1337)
XDS_PORT = 15010
CA_PORT = 15012
REQUIRED_TOOLS = ("ip", "iptables-restore", "setpriv")


def capture_problem() -> str | None:
    """Why this process cannot run the captured demo, or None."""
    if os.geteuid() != 0:
        return "--capture needs root (network namespaces, iptables, running Envoy as the proxy user)"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"--capture needs {', '.join(missing)} (Debian: apt-get install iptables iproute2 util-linux)"
    return None


def _pod_address(index: int) -> tuple[str, str]:
    """(pod address, its node-side gateway) of the index-th pod (clients first, then details)."""
    return f"10.78.{index + 1}.2", f"10.78.{index + 1}.1"


@dataclass
class CapturedMesh(LocalMesh):
    """LocalMesh with its pods in network namespaces, their traffic captured."""

    pods: dict[str, Netns] = field(default_factory=dict, init=False)
    node: Netns | None = field(default=None, init=False)
    _stack: ExitStack = field(default_factory=ExitStack, init=False)
    _serve_process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _xds_port: int = field(default=0, init=False)

    def start(self, progress: Callable[[str], None] = lambda _: None) -> LocalMesh:
        problem = capture_problem()
        if problem:
            raise MeshctlError(problem)
        tag = f"mcd{os.getpid() % 100000}"
        clients = tuple(Client(name, _pod_address(index)[0]) for index, name in enumerate(self.client_names))
        server = Server(_pod_address(len(clients))[0], SERVICE_PORT, SERVICE_PORT)
        self.layout = Layout(BACKEND_IPS, SERVICE_PORT, clients, server, captured=True)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "workloads.yaml").write_text(workloads_yaml(self.layout))
        self.write_routing(None)
        progress("creating the node and pod network namespaces")
        workloads = self.layout.workloads
        node, *pods = self._stack.enter_context(namespaces(f"{tag}n", *(f"{tag}{i}" for i in range(len(workloads)))))
        self.node = node
        for index, (workload, pod) in enumerate(zip(workloads, pods, strict=True)):
            address, gateway = _pod_address(index)
            link(pod, f"{address}/24", node, f"{gateway}/24")
            pod.ip("route", "add", "default", "via", gateway)
            self.pods[workload.name] = pod
        for address in BACKEND_IPS:
            node.ip("addr", "add", f"{address}/32", "dev", "lo")
        node.route_between_links()  # a client's calls to details cross the node
        progress("starting reviews v1, v2, v3 and details")
        for name, version in zip(BACKENDS, VERSIONS, strict=True):
            backend = node.call(functools.partial(NameServer, name, self.layout.backend(version), SERVICE_PORT))
            self._stack.callback(backend.stop)
        details = self.pods[server.name].call(functools.partial(NameServer, server.name, "0.0.0.0", server.app_port))
        self._stack.callback(details.stop)
        progress("starting meshctl serve")
        self._start_serve_in(node)
        for index, workload in enumerate(workloads):
            progress(f"capturing the {workload.pod} pod's traffic (meshctl iptables) and starting its sidecar")
            self._capture(self.pods[workload.name])
            self.envoys.append(self._start_agent(workload, self.pods[workload.name], _pod_address(index)[1]))
        for envoy, workload in zip(self.envoys, workloads, strict=True):
            self.pods[workload.name].call(functools.partial(envoy.wait_ready, 30))
        self.wait_routed()
        return self

    def _start_serve_in(self, node: Netns) -> None:
        from meshctl.security.cadir import open_ca_directory

        open_ca_directory(self.ca_dir, "cluster.local")  # tokens can be minted at once
        argv = [sys.executable, "-m", "meshctl", "serve", "--config-dir", str(self.config_dir),
                "--xds-address", f"0.0.0.0:{XDS_PORT}", "--debug-address", "127.0.0.1:15014",
                "--ca-address", f"0.0.0.0:{CA_PORT}", "--ca-dir", str(self.ca_dir), "--debounce-after", "0"]
        log = self.workdir / "serve.log"
        with log.open("wb") as stderr:
            serve = self._processes.start(node.argv(argv), stdout=subprocess.DEVNULL, stderr=stderr,
                                          start_new_session=True)
        wait_until(lambda: ensure_running(serve, "meshctl serve", [log]) and node.call(lambda: accepting(CA_PORT)),
                   20, what="meshctl serve to listen")
        self._serve_process = serve
        forward = Forward(node, "127.0.0.1", XDS_PORT)
        self._stack.callback(forward.close)
        self._xds_port = forward.port

    @property
    def ca_dir(self) -> Path:
        return self.workdir / "ca"

    @staticmethod
    def _capture(pod: Netns) -> None:
        """istio-init's work: `meshctl iptables` with the arguments kube-inject gives it."""
        from meshctl.inject.agent import Capture, iptables_args
        from meshctl.inject.settings import InjectSettings

        args = iptables_args(InjectSettings(), {}, Capture("REDIRECT", 15020))
        done = pod.run([sys.executable, "-m", "meshctl", *args])
        if done.returncode != 0:
            raise MeshctlError(f"meshctl {' '.join(args)} failed in {pod.name}: {done.stderr.strip()}")

    def _start_agent(self, workload: Client | Server, pod: Netns, gateway: str) -> Sidecar:
        """`meshctl agent` in the pod as the proxy user (pod_sidecar), its log copied to the
        work directory at the end (the pod's token is not)."""
        sidecar = pod_sidecar(self._stack, pod, f"{workload.pod}.default", PROXY_IDS, ca_dir=self.ca_dir,
                              config=self.config_dir, account=workload.service_account,
                              xds_address=f"{gateway}:{XDS_PORT}", ca_address=f"{gateway}:{CA_PORT}",
                              interception="REDIRECT", delta=self.delta)
        self._stack.callback(shutil.copytree, sidecar.workdir, self.workdir / workload.pod, dirs_exist_ok=True,
                             ignore=shutil.ignore_patterns("istio-token"))
        return sidecar

    def requests(self, client: Client, count: int, headers: dict[str, str] | None = None, *,
                 host: str = "reviews") -> list[tuple[int, str]]:
        """Requests by the client's application (root: not the proxy user, so captured) for the
        ClusterIP of `host`, sent from inside its pod."""
        address = CLUSTER_IPS[host]
        return self.pods[client.name].call(lambda: [request(address, headers, host=host) for _ in range(count)])

    def seen_by_server(self, client: Client) -> tuple[int, str, str]:
        """From inside the client's pod, for details' ClusterIP (captured to its sidecar)."""
        server = self.layout.server.name
        return self.pods[client.name].call(lambda: caller_seen(CLUSTER_IPS[server], server))

    def plaintext_to_server(self) -> int:
        """From the node's namespace, which has no sidecar, straight at details' pod address
        (captured to its sidecar's 15006)."""
        assert self.node is not None
        return self.node.call(lambda: plaintext_to_server(self.layout.server))

    def handshakes(self) -> list[tuple[str, int]]:
        """Each Envoy's counters, asked inside its pod (its admin port is the pod's loopback)."""
        return [(workload.pod, self.pods[workload.name].call(functools.partial(tls_handshakes, envoy)))
                for envoy, workload in zip(self.envoys, self.layout.workloads, strict=True)]

    @property
    def serve(self) -> subprocess.Popen[bytes] | None:
        return self._serve_process

    @property
    def xds_port(self) -> int:
        """serve's xDS, forwarded to this host's loopback."""
        return self._xds_port

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._stack.close()

    def describe(self) -> list[str]:
        """What capture set up, for the demo to say before its checks."""
        lines = []
        for client in self.layout.clients:
            lines.append(f"{client.pod}: pod {client.bind} in network namespace {self.pods[client.name].name}, "
                         f"meshctl agent and Envoy as UID {PROXY_IDS[0]}, its calls to reviews and details "
                         f"({CLUSTER_IPS['reviews']}, {CLUSTER_IPS['details']}:{SERVICE_PORT}) captured to 15001")
        server = self.layout.server
        lines.append(f"{server.pod}: pod {server.ip} in network namespace {self.pods[server.name].name}, "
                     f"calls to its port {server.inbound_port} captured to 15006")
        return lines

    def counters(self, client: Client, names: list[str]) -> dict[str, Any]:
        """Envoy counters of a client's sidecar (admin API, inside its pod)."""
        envoy = self.envoys[self.layout.clients.index(client)]
        return self.pods[client.name].call(lambda: {name: envoy.stats(name).get(name, "0") for name in names})
