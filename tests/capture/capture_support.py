"""The capture tests' network namespaces (meshctl.capture.netns, made per test module and
removed by name afterwards), whether this machine can run them, a server that says who called
it; `meshctl agent` in a pod (pod_sidecar) is meshctl.capture.netns', shared with the demo."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from typing import Any

import pytest

from meshctl.capture.netns import Netns, link, namespaces, pod_sidecar

__all__ = ["Netns", "PeerServer", "link", "namespaces", "pod_sidecar", "require_capture_support"]
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
