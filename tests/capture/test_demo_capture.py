"""`meshctl demo --capture` as a user runs it (root): the sidecars in network namespaces of
their pods, their traffic captured with `meshctl iptables` (outbound on 15001, details' inbound
on 15006 with mTLS and its AuthorizationPolicy), the same routing shown and checked as without
capture, and every namespace gone afterwards."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from capture_support import require_capture_support
from testsupport import assert_demo_routed

from meshctl.capture.netns import as_user


def test_demo_with_capture_routes_the_same(tmp_path: Path) -> None:
    require_capture_support()
    result = subprocess.run(
        [sys.executable, "-m", "meshctl", "demo", "--capture", "--workdir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=180, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert_demo_routed(out)
    namespaces = re.findall(r"in network namespace (mcd\d+)", out)
    assert len(namespaces) == 3, out  # productpage, ratings, details
    captured = re.search(r"Envoy accepted (\d+) captured connections on port 9080", out)
    assert captured and int(captured[1]) >= 300, out
    assert "every step checked out" in result.stderr
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not set(namespaces) & {line.split()[0] for line in listed.splitlines() if line}
    # Envoy runs as the proxy user: as root, its own connections to reviews would be captured
    # back into it and loop, and no request above would have been answered. The agent's log
    # (with Envoy's) is kept; the pod's token is not.
    kept = tmp_path / "demo" / "productpage-v1"
    assert "productpage-v1.default" in (kept / "proxy.agent.log").read_text()
    assert not (kept / "istio-token").exists()


def test_demo_capture_needs_root() -> None:
    require_capture_support()
    result = subprocess.run([*as_user(1000, 1000), sys.executable, "-m", "meshctl", "demo", "--capture"],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": "/tmp"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--capture needs root" in result.stderr
    assert "Traceback" not in result.stderr
