"""A pod's Envoy admin endpoint as a DumpSource, reached through the Kubernetes API.

The admin endpoint listens on 127.0.0.1 inside the pod, so the only ways in are a port-forward
(which enters the pod's network namespace) and an exec into the sidecar; this is how istioctl
reads it too.
"""

from __future__ import annotations

import http.client
import logging
from dataclasses import dataclass, field

from meshctl.calllog import timed
from meshctl.errors import MeshctlError
from meshctl.inspect.acquire import PROXY_ADMIN_PORT, EnvoyAdminError, LiveSource
from meshctl.kube.client import KubeClient
from meshctl.kube.podexec import exec_command
from meshctl.kube.pods import PodRef
from meshctl.kube.portforward import open_tunnel
from meshctl.kube.streams import StreamError

__all__ = ["PROXY_CONTAINER", "PodSource"]

log = logging.getLogger(__name__)

PROXY_CONTAINER = "istio-proxy"


@dataclass(slots=True)
class PodSource(LiveSource):
    """A pod's Envoy admin endpoint (a DumpSource), read over port-forward or, failing that, exec.

    Each request opens a port-forward to `admin_port`, sends one HTTP/1.1 request with
    `Connection: close` and reads the whole response. When the port-forward cannot be opened
    or breaks (RBAC forbids it, the port is closed, the stream is cut), the request is run as
    `pilot-agent request METHOD PATH` in the `istio-proxy` container instead, and later requests
    go straight to exec. An HTTP error from Envoy itself is reported as is, never retried.
    """

    client: KubeClient
    pod: PodRef
    admin_port: int = PROXY_ADMIN_PORT
    _forward_failure: str | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return str(self.pod)

    def _request(self, method: str, path: str) -> bytes:
        with timed(lambda: f"{method} /{path.lstrip('/')} on {self.name} (Envoy admin, port {self.admin_port})") as outcome:
            body = self._answer(method, path)
            outcome(f"{len(body)} bytes")
            return body

    def _answer(self, method: str, path: str) -> bytes:
        path = path.lstrip("/")
        if self._forward_failure is None:
            try:
                return self._over_forward(method, path)
            except StreamError as exc:
                self._forward_failure = str(exc)
                log.info("port-forward to %s:%d failed (%s); using exec", self.name, self.admin_port, exc)
        return self._over_exec(method, path, self._forward_failure)

    def _over_forward(self, method: str, path: str) -> bytes:
        with open_tunnel(self.client, self.pod, self.admin_port) as tunnel:
            connection = http.client.HTTPConnection("127.0.0.1", self.admin_port)
            connection.sock = tunnel.socket
            try:
                connection.request(method, f"/{path}", headers={"Connection": "close"})
                response = connection.getresponse()
                body = response.read()
            except (http.client.HTTPException, OSError) as exc:
                raise StreamError(tunnel.error() or str(exc) or type(exc).__name__) from None
        if response.status != 200:
            detail = body.decode(errors="replace").strip()
            raise EnvoyAdminError(
                f"Envoy admin on {self.name} answered HTTP {response.status} to {method} /{path}"
                + (f": {detail}" if detail else ""),
                response.status, detail,
            )
        return body

    def _over_exec(self, method: str, path: str, forward_failure: str) -> bytes:
        argv = ["pilot-agent", "request", method, path]
        context = (
            f"cannot {method} /{path} on {self.name}: port-forward to port {self.admin_port} "
            f"failed ({forward_failure}), and the fallback `{' '.join(argv)}` "
            f"in container {PROXY_CONTAINER}"
        )
        try:
            result = exec_command(self.client, self.pod, PROXY_CONTAINER, argv)
        except StreamError as exc:
            raise MeshctlError(f"{context} failed ({exc})") from None
        if result.exit_code != 0:
            detail = result.stderr.decode(errors="replace").strip()
            raise MeshctlError(f"{context} exited with code {result.exit_code}" + (f": {detail}" if detail else ""))
        return result.stdout
