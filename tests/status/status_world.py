"""A small mesh served by a real `meshctl serve` (real translator) to two real Envoys.

Two client workloads, productpage-v1 and details-v1, run with `interceptionMode: NONE`: a
Sidecar gives each an egress listener bound to a loopback address of its own, so both Envoys
run side by side on one host without iptables. The reviews service has three endpoints and two
subsets (DestinationRule) and a header-routed, weighted VirtualService.

Every port is picked free when the world starts, and the two bind addresses are picked at
random in 127.0.0.0/8, so concurrent test runs do not collide. `canonical` maps those
volatile values back to fixed ones, for golden files.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshctl.loopback import ControlPlane, Sidecar, free_port, port_free, wait_until
from meshctl.model.secrets import AGENT_SOCKET

PODS = ("productpage-v1", "details-v1")
NAMESPACE = "default"
# The values goldens show instead of the ports and addresses picked at run time.
CANONICAL_PORTS = {"http": 9080, "details": 9081, "reviews_target": 8081, "productpage_target": 8082,
                   "details_target": 8083, "xds": 15010}
CANONICAL_BINDS = {"productpage-v1": "127.0.0.10", "details-v1": "127.0.0.11"}
ACCOUNTS = {"productpage-v1": "bookinfo-productpage", "details-v1": "bookinfo-details"}

MESH = """\
apiVersion: v1
kind: Service
metadata: {{name: reviews}}
spec:
  ports: [{{name: http, port: {http}, targetPort: {reviews_target}}}]
  selector: {{app: reviews}}
---
apiVersion: v1
kind: Service
metadata: {{name: productpage}}
spec:
  ports: [{{name: http, port: {http}, targetPort: {productpage_target}}}]
  selector: {{app: productpage}}
---
apiVersion: v1
kind: Service
metadata: {{name: details}}
spec:
  ports: [{{name: http, port: {details}, targetPort: {details_target}}}]
  selector: {{app: details}}
---
apiVersion: v1
kind: Pod
metadata:
  name: productpage-v1
  labels: {{app: productpage, version: v1}}
  annotations: {{sidecar.istio.io/interceptionMode: NONE}}
spec:
  serviceAccountName: bookinfo-productpage
  containers: [{{name: productpage, image: productpage}}]
status: {{podIP: 127.0.0.2}}
---
apiVersion: v1
kind: Pod
metadata:
  name: details-v1
  labels: {{app: details, version: v1}}
  annotations: {{sidecar.istio.io/interceptionMode: NONE}}
spec:
  serviceAccountName: bookinfo-details
  containers: [{{name: details, image: details}}]
status: {{podIP: 127.0.0.3}}
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1
  labels: {{app: reviews, version: v1}}
  annotations: {{sidecar.istio.io/inject: "false"}}
spec: {{containers: [{{name: reviews, image: reviews}}]}}
status: {{podIP: 127.0.0.21}}
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v2
  labels: {{app: reviews, version: v2}}
  annotations: {{sidecar.istio.io/inject: "false"}}
spec: {{containers: [{{name: reviews, image: reviews}}]}}
status: {{podIP: 127.0.0.22}}
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v3
  labels: {{app: reviews, version: v3}}
  annotations: {{sidecar.istio.io/inject: "false"}}
spec: {{containers: [{{name: reviews, image: reviews}}]}}
status: {{podIP: 127.0.0.23}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: productpage}}
spec:
  workloadSelector: {{labels: {{app: productpage}}}}
  egress:
  - port: {{number: {http}, protocol: HTTP, name: http}}
    bind: {productpage_bind}
    captureMode: NONE
    hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: details}}
spec:
  workloadSelector: {{labels: {{app: details}}}}
  egress:
  - port: {{number: {http}, protocol: HTTP, name: http}}
    bind: {details_bind}
    captureMode: NONE
    hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  trafficPolicy: {{connectionPool: {{tcp: {{connectTimeout: {connect_timeout}}}}}}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]
    route: [{{destination: {{host: reviews, subset: v2}}}}]
  - route:
    - {{destination: {{host: reviews, subset: v1}}, weight: 50}}
    - {{destination: {{host: reviews, subset: v2}}, weight: 50}}
"""


def _random_loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"


@dataclass
class World:
    """The running mesh: serve's addresses, the Envoys by pod, and the values picked at start."""

    workdir: Path
    start_process: Callable[..., subprocess.Popen[bytes]]
    ports: dict[str, int] = field(default_factory=dict)
    binds: dict[str, str] = field(default_factory=dict)
    envoys: dict[str, Sidecar] = field(default_factory=dict)
    serve: subprocess.Popen[bytes] | None = None
    debug_port: int = 0

    @property
    def config_dir(self) -> Path:
        return self.workdir / "mesh"

    @property
    def debug_url(self) -> str:
        return f"http://127.0.0.1:{self.debug_port}"

    @property
    def xds_address(self) -> str:
        return f"127.0.0.1:{self.ports['xds']}"

    def admin_url(self, pod: str) -> str:
        return self.envoys[pod].admin_url

    def start(self) -> World:
        for pod in PODS:
            self.binds[pod] = _random_loopback()
        while len(set(self.ports.values())) < len(CANONICAL_PORTS):  # distinct, so each maps back
            self.ports = {name: free_port() for name in CANONICAL_PORTS}
            if not all(port_free(bind, self.ports["http"]) for bind in self.binds.values()):
                self.ports = {}
        self.write_mesh()
        serve = ControlPlane(self.start_process, self.config_dir, self.workdir / "ca", self.workdir / "serve.log",
                             xds_port=self.ports["xds"], extra=["--debounce-after", "10ms", "--log-level", "debug"])
        self.serve, self.debug_port = serve.process, serve.debug_port
        serve.wait_ready()
        for pod in PODS:
            token = serve.token(NAMESPACE, ACCOUNTS[pod], self.workdir / f"{pod}.token", pod=pod)
            self.envoys[pod] = serve.sidecar(f"{pod}.{NAMESPACE}", self.workdir, pod, token, config_dir=self.config_dir)
        for envoy in self.envoys.values():
            envoy.wait_ready(30)
        wait_until(self.all_synced, 20, what="both Envoys SYNCED")
        return self

    def write_mesh(self, connect_timeout: str = "10s", details_bind: str = "") -> None:
        """(Re)write the mesh; serve picks the change up within its debounce. `details_bind`
        moves details-v1's listener (to an address Envoy cannot bind, for a NACK)."""
        self.config_dir.mkdir(exist_ok=True)
        text = MESH.format(**self.ports, productpage_bind=self.binds["productpage-v1"],
                           details_bind=details_bind or self.binds["details-v1"], connect_timeout=connect_timeout)
        tmp = self.config_dir / ".mesh.yaml.tmp"
        tmp.write_text(text)
        tmp.replace(self.config_dir / "mesh.yaml")

    def stop(self) -> None:
        for envoy in self.envoys.values():
            envoy.stop()

    def syncz(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.debug_url}/debug/syncz", timeout=5) as response:
            return json.load(response)

    def statuses(self, pod: str) -> dict[str, str]:
        """CSDS status per short type name of one proxy, as serve reports it over HTTP."""
        for config in self.syncz():
            if config["node"]["id"] == f"{pod}.{NAMESPACE}":
                return {c["typeUrl"].rsplit(".", 1)[-1]: c["configStatus"] for c in config["genericXdsConfigs"]}
        return {}

    def all_synced(self) -> bool:
        return all(
            len(statuses) == 4 and set(statuses.values()) == {"SYNCED"}
            for statuses in (self.statuses(pod) for pod in PODS)
        )

    def config_dump(self, pod: str, path: str = "/config_dump") -> bytes:
        return self.envoys[pod].admin(path)

    def replacements(self) -> dict[str, str]:
        """Run-time values (as text) and the canonical values goldens show instead."""
        out = {str(self.ports[name]): str(port) for name, port in CANONICAL_PORTS.items()}
        out.update({self.binds[pod]: CANONICAL_BINDS[pod] for pod in PODS})
        out.update({str(sidecar.socket_dir / "socket"): AGENT_SOCKET for sidecar in self.envoys.values()})
        return out


def canonical(data: bytes, replacements: Mapping[str, str]) -> bytes:
    """Admin JSON with run-time ports and addresses replaced by canonical ones, in numbers and in
    names alike (certificates and other inline bytes are left alone)."""
    pattern = re.compile("|".join(rf"(?<![\d.]){re.escape(token)}(?![\d])" for token in replacements))

    def fix(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: fix(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(item, key) for item in value]
        if isinstance(value, str) and key not in ("inline_bytes", "inline_string"):
            return pattern.sub(lambda match: replacements[match.group(0)], value)
        if isinstance(value, int) and not isinstance(value, bool) and key == "port_value":
            return int(replacements.get(str(value), value))
        return value

    return json.dumps(fix(json.loads(data))).encode()
