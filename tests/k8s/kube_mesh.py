"""The demo's reviews mesh, run from a cluster: its objects in the emulated API server, written
through the official client; `meshctl serve --kubernetes` replicas reading them, sharing one CA;
a real Envoy sidecar run by `meshctl agent`, bootstrapped with every replica's address and
proving its identity with a ServiceAccount token the API server issued (TokenRequest, checked
by the CA with a TokenReview); reviews v1-v3 as HTTP backends on loopback.

What the demo keeps in files (meshctl.demo.mesh) is created here through the API instead, and
the EndpointSlice the cluster's controller would write is the test's to set, so it can scale it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from emulator import BackgroundEmulator

from meshctl.demo.mesh import SERVICE_PORT, VERSIONS, Layout, routing_yaml, workloads_yaml
from meshctl.demo.runtime import Backends, plan_layout, request
from meshctl.kube.apply import apply_objects, delete_objects
from meshctl.kube.client import KubeClient, load_client
from meshctl.loopback import Sidecar, http_get, wait_until
from meshctl.security.cadir import open_ca_directory

sys.path.append(str(Path(__file__).resolve().parents[1] / "xds"))  # its serve process helper
from serve_process import Serve  # noqa: E402 - after the path it lives on

REVIEWS_HOST = "reviews.default.svc.cluster.local"
CLIENT = "productpage-v1"


class KubeServe(Serve):
    """`python -m meshctl serve --kubernetes` (the real translator) on fixed ports, its CA (if
    `ca_dir` is given) on one of them."""

    def __init__(self, kubeconfig: str, start: Any, log: Path, flags: tuple[str, ...] = (),
                 ca_dir: Path | None = None) -> None:
        super().__init__(Path(kubeconfig).parent, start, log, ca_dir=ca_dir)
        self.kubeconfig = kubeconfig
        self.flags = flags

    def argv(self, *extra: str) -> list[str]:
        ca = ["--ca-address", f"127.0.0.1:{self.ca_port}", "--ca-dir", str(self.ca_dir)] if self.ca_dir else \
            ["--ca-address", ""]
        return [sys.executable, "-m", "meshctl", "serve", "--kubernetes", "--kubeconfig", self.kubeconfig,
                "--xds-address", f"127.0.0.1:{self.xds_port}", "--debug-address", f"127.0.0.1:{self.debug_port}",
                *ca, *self.flags, *extra]

    def leading(self) -> bool:
        """Whether `/metrics` says this replica holds the leader Lease."""
        return "\nmeshctl_leader 1\n" in http_get(self.url("/metrics"))[1]


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    """A pod as the kubelet reports a running one: Ready (the demo's files only say its IP)."""
    if obj.get("kind") == "Pod":
        obj["status"] = dict(obj.get("status") or {}, phase="Running",
                             conditions=[{"type": "Ready", "status": "True"}])
    return obj


class KubeMesh:
    """Everything started in order by `start`, stopped in reverse by `stop`."""

    def __init__(self, workdir: Path, api: BackgroundEmulator, kubeconfig: str, processes: Any, *,
                 replicas: int = 1, delta: bool = False, flags: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.api = api
        self.kubeconfig = kubeconfig
        self.processes = processes
        self.delta = delta
        self.client: KubeClient = load_client(kubeconfig, None)
        self.layout: Layout = plan_layout(("productpage",))
        self.ca_dir = workdir / "ca"
        open_ca_directory(self.ca_dir, "cluster.local")  # one CA for every replica, as istio-ca-secret is
        self.replicas = [KubeServe(kubeconfig, processes, workdir / f"serve-{i}.log", flags, self.ca_dir)
                         for i in range(replicas)]
        self.backends: Backends | None = None
        self.envoy: Sidecar | None = None

    def start(self, endpoints: Iterable[str] = ("v1", "v2")) -> KubeMesh:
        workloads = [_ready(doc) for doc in yaml.safe_load_all(workloads_yaml(self.layout))]
        apply_objects(self.client, workloads)
        self.set_endpoints(endpoints)
        self.route(None)
        self.backends = Backends(self.layout)
        for replica in self.replicas:
            replica.start()
        self.envoy = self._start_envoy()
        self.envoy.wait_ready(30)
        wait_until(lambda: self.request()[0] == 200, 30, what="traffic through the sidecar")
        return self

    def _start_envoy(self) -> Sidecar:
        """productpage's sidecar: `meshctl agent` with the pod's ServiceAccount token, as the
        kubelet would mount it (audience istio-ca), every replica in its bootstrap."""
        account = "bookinfo-productpage"
        self.client.core.create_namespaced_service_account("default", {"metadata": {"name": account}})
        issued = self.client.core.create_namespaced_service_account_token(
            account, "default", {"spec": {"audiences": ["istio-ca"], "expirationSeconds": 3600}})
        token = self.workdir / "istio-token"
        token.write_text(str(issued.status.token))
        token.chmod(0o600)
        first, *others = [f"127.0.0.1:{replica.xds_port}" for replica in self.replicas]
        return Sidecar.start(f"{CLIENT}.default", self.workdir, CLIENT, xds_address=first, more_xds=others,
                             ca_address=f"127.0.0.1:{self.replicas[0].ca_port}", ca_root=self.ca_dir / "root-cert.pem",
                             token_file=token, service_account=account, delta=self.delta)

    # -- the cluster, changed through the API ------------------------------------------------------

    def set_endpoints(self, versions: Iterable[str], *, unready: Iterable[str] = ()) -> None:
        """The reviews EndpointSlice, listing these versions' pods (`unready` ones not ready)."""
        unready = set(unready)
        endpoints = [
            {"addresses": [self.layout.backend(v)], "conditions": {"ready": v not in unready},
             "targetRef": {"kind": "Pod", "name": f"reviews-{v}", "namespace": "default"}}
            for v in versions
        ]
        apply_objects(self.client, [{
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "reviews-x7k2p", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "reviews"}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": [{"name": "http", "port": self.layout.backend_port, "protocol": "TCP"}],
        }])

    def route(self, split: Mapping[str, int] | None) -> None:
        """The reviews VirtualService (meshctl.demo.mesh.routing_yaml), created or updated."""
        apply_objects(self.client, [yaml.safe_load(routing_yaml(dict(split) if split else None))])

    def unroute(self) -> None:
        delete_objects(self.client, [yaml.safe_load(routing_yaml(None))])

    # -- what the sidecar does ----------------------------------------------------------------------

    def request(self, headers: dict[str, str] | None = None) -> tuple[int, str]:
        return request(self.layout.clients[0].bind, headers)

    @property
    def url(self) -> str:
        """What `request` asks for, for a RequestLoop (with `host_header`)."""
        return f"http://{self.layout.clients[0].bind}:{SERVICE_PORT}/reviews/0"

    host_header = {"Host": "reviews"}

    def answers(self, count: int) -> set[str]:
        return {self.request()[1] for _ in range(count)}

    def eds_addresses(self, subset: str = "") -> set[str]:
        """The addresses Envoy holds for a reviews cluster (its config dump's EDS section)."""
        assert self.envoy is not None
        name = f"outbound|9080|{subset}|{REVIEWS_HOST}"
        dump = json.loads(self.envoy.admin("config_dump?include_eds"))
        for section in dump["configs"]:
            for config in section.get("dynamic_endpoint_configs", ()):
                assignment = config["endpoint_config"]
                if assignment["cluster_name"] == name:
                    return {lb["endpoint"]["address"]["socket_address"]["address"]
                            for group in assignment.get("endpoints", ()) for lb in group.get("lb_endpoints", ())}
        return set()

    def backend_ips(self, *versions: str) -> set[str]:
        return {self.layout.backend(v) for v in versions or VERSIONS}

    def stop(self) -> None:
        if self.envoy is not None:
            self.envoy.stop()
        for replica in self.replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.process.kill()
                replica.process.wait(10)
        if self.backends is not None:
            self.backends.stop()
