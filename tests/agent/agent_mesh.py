"""A mesh of agent-run sidecars talking mTLS: `meshctl serve` (real translator, its CA), the
reviews pod's sidecar in front of an app that echoes the client certificate Envoy forwards,
and client sidecars (productpage, ratings) whose outbound listeners route to reviews.

Everything runs with interception mode NONE on loopback addresses picked at random: reviews'
sidecar binds its inbound port on its pod IP and hands requests to the app on 127.0.0.1;
each client's Sidecar binds its egress listener on an address of its own. Reviews' endpoint
is an injected pod, so the clients reach it with Istio mTLS (auto mTLS), one connection per
request (DestinationRule `maxRequestsPerConnection: 1`), so every request is a TLS handshake
with the certificates of that moment.
"""

from __future__ import annotations

import http.server
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshctl.loopback import ControlPlane, Processes, Sidecar, free_port, http_get, port_free, wait_until

SERVICE_PORT = 9080
ACCOUNTS = {pod: f"bookinfo-{pod.split('-')[0]}" for pod in ("reviews-v1", "productpage-v1", "ratings-v1")}
CLIENTS = ("productpage-v1", "ratings-v1")

MESH = """\
apiVersion: v1
kind: Service
metadata: {{name: reviews, namespace: default}}
spec:
  ports: [{{name: http, port: {service}, targetPort: {inbound}}}]
  selector: {{app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  trafficPolicy: {{connectionPool: {{http: {{maxRequestsPerConnection: 1}}}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1
  namespace: default
  labels: {{app: reviews, version: v1}}
  annotations: {{sidecar.istio.io/interceptionMode: NONE}}
spec:
  serviceAccountName: bookinfo-reviews
  containers: [{{name: reviews, image: reviews, ports: [{{containerPort: {inbound}}}]}}]
status: {{podIP: {reviews_ip}}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: reviews, namespace: default}}
spec:
  workloadSelector: {{labels: {{app: reviews}}}}
  ingress:
  - port: {{number: {inbound}, protocol: HTTP, name: http}}
    bind: {reviews_ip}
    defaultEndpoint: 127.0.0.1:{app}
  egress:
  - port: {{number: {service}, protocol: HTTP, name: http}}
    bind: {reviews_ip}
    captureMode: NONE
    hosts: ["./*"]
"""

CLIENT = """\
---
apiVersion: v1
kind: Pod
metadata:
  name: {pod}
  namespace: default
  labels: {{app: {app}, version: v1}}
  annotations: {{sidecar.istio.io/interceptionMode: NONE}}
spec:
  serviceAccountName: {account}
  containers: [{{name: {app}, image: {app}}}]
status: {{podIP: {bind}}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {app}, namespace: default}}
spec:
  workloadSelector: {{labels: {{app: {app}}}}}
  egress:
  - port: {{number: {service}, protocol: HTTP, name: http}}
    bind: {bind}
    captureMode: NONE
    hosts: ["./*"]
"""


class Answering(http.server.BaseHTTPRequestHandler):
    """An app answering every GET with what `answer` says about the request."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def answer(self) -> str:
        raise NotImplementedError

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = self.answer().encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


class _EchoClientCert(Answering):
    """Answers with the `x-forwarded-client-cert` its sidecar set: who called, with which cert."""

    def answer(self) -> str:
        return self.headers.get("x-forwarded-client-cert") or "none"


def _loopback_with_free(port: int, taken: set[str]) -> str:
    while True:
        address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        if address not in taken and port_free(address, port) and port_free(address, SERVICE_PORT):
            taken.add(address)
            return address


@dataclass
class AgentMesh:
    """serve, the app behind reviews' sidecar, and the sidecars started so far (by pod)."""

    workdir: Path
    processes: Processes
    secret_ttl: str = "24h"
    sidecars: dict[str, Sidecar] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    serve: ControlPlane = field(init=False)
    started: int = 0

    @property
    def ca_dir(self) -> Path:
        return self.workdir / "ca"

    @property
    def config_dir(self) -> Path:
        return self.workdir / "mesh"

    @property
    def serve_log(self) -> Path:
        return self.workdir / "serve.log"

    def start(self) -> AgentMesh:
        self.ports = {"app": free_port(), "inbound": free_port()}
        taken: set[str] = set()
        self.addresses = {pod: _loopback_with_free(self.ports["inbound"], taken) for pod in ACCOUNTS}
        self.config_dir.mkdir(parents=True)
        text = MESH.format(service=SERVICE_PORT, reviews_ip=self.addresses["reviews-v1"], **self.ports)
        for pod in CLIENTS:
            text += CLIENT.format(pod=pod, app=pod.split("-")[0], account=ACCOUNTS[pod], bind=self.addresses[pod],
                                  service=SERVICE_PORT)
        (self.config_dir / "mesh.yaml").write_text(text)
        app = http.server.ThreadingHTTPServer(("127.0.0.1", self.ports["app"]), _EchoClientCert)
        app.daemon_threads = True
        threading.Thread(target=app.serve_forever, args=(0.05,), daemon=True).start()
        self.stop_app = app.shutdown
        self.serve = ControlPlane(self.processes.start, self.config_dir, self.ca_dir, self.serve_log,
                                  extra=["--debounce-after", "10ms", "--log-level", "debug"]).wait_ready()
        self.ports.update(xds=self.serve.xds_port, debug=self.serve.debug_port, ca=self.serve.ca_port)
        return self

    def sidecar(self, pod: str, *, token: Path | None = None, **options: Any) -> Sidecar:
        """Start an agent for `pod` (with a token for its account unless given one), its files
        (log, work directory, token) named for this start alone."""
        self.started += 1
        name = f"{pod}-{self.started}"
        token = token or self.serve.token("default", ACCOUNTS[pod], self.workdir / f"{name}.token", pod=pod)
        options.setdefault("secret_ttl", self.secret_ttl)
        sidecar = self.serve.sidecar(f"{pod}.default", self.workdir, name, token, config_dir=self.config_dir,
                                     log_level="debug", **options)
        self.sidecars[pod] = sidecar
        return sidecar

    def with_reviews_and_productpage(self, **reviews: Any) -> AgentMesh:
        """Start reviews' sidecar (with `reviews` options) and productpage's, and wait until
        productpage reaches reviews (over mTLS, unless a policy says otherwise)."""
        self.sidecar("reviews-v1", **reviews)
        self.sidecar("productpage-v1")
        for sidecar in self.sidecars.values():
            sidecar.wait_ready(60)
        wait_until(lambda: self.call("productpage-v1")[0] == 200, 30, what="productpage to reach reviews")
        return self

    def url(self, client: str) -> str:
        return f"http://{self.addresses[client]}:{SERVICE_PORT}/"

    def call(self, client: str) -> tuple[int, str]:
        """One request for reviews through `client`'s sidecar."""
        return http_get(self.url(client), headers={"Host": "reviews"})

    def stop(self) -> None:
        for sidecar in self.sidecars.values():
            sidecar.stop()
        self.processes.stop()
        self.stop_app()
