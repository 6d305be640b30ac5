"""Fixtures for the Kubernetes paths: an emulated API server, a kubeconfig for it, a real Envoy.

Every test gets a fresh emulator (starting one takes milliseconds), so no state leaks between
tests. The kubeconfig has two contexts on the same server: `alpha` (current, no namespace, so
"default" applies) and `beta` (namespace `team-b`); they log in with different tokens, so a
test can tell from the requests which context the client used.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from emulator import BackgroundEmulator, MeshEmulator
from seeds import ALPHA_TOKEN, BETA_NAMESPACE, BETA_TOKEN

from meshctl.envoybin import find_envoy

ENVOY_BOOTSTRAP = {
    "node": {"id": "sidecar~10.0.0.7~reviews-v1-7f9c.default~default.svc.cluster.local"},
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
    "static_resources": {
        "clusters": [
            {
                "name": "static-probe",
                "type": "STATIC",
                "load_assignment": {
                    "cluster_name": "static-probe",
                    "endpoints": [
                        {
                            "lb_endpoints": [
                                {
                                    "endpoint": {
                                        "address": {
                                            "socket_address": {
                                                "address": "127.0.0.1",
                                                "port_value": 9,
                                            }
                                        }
                                    }
                                }
                            ]
                        }
                    ],
                },
            }
        ]
    },
}


@pytest.fixture
def api_server() -> Iterator[BackgroundEmulator]:
    """The emulator running in its own thread; fails the test if it raised unexpectedly."""
    with BackgroundEmulator() as background:
        yield background
    assert not background.failures, f"the emulator raised: {background.failures!r}"


@pytest.fixture
def emulator(api_server: BackgroundEmulator) -> MeshEmulator:
    assert api_server.emulator is not None
    return api_server.emulator


@pytest.fixture
def kubeconfig(
    api_server: BackgroundEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A kubeconfig file for the emulator; KUBECONFIG is cleared so nothing else leaks in."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "alpha",
        "clusters": [{"name": "emulator", "cluster": {"server": api_server.url}}],
        "users": [
            {"name": "alpha-user", "user": {"token": ALPHA_TOKEN}},
            {"name": "beta-user", "user": {"token": BETA_TOKEN}},
        ],
        "contexts": [
            {"name": "alpha", "context": {"cluster": "emulator", "user": "alpha-user"}},
            {
                "name": "beta",
                "context": {
                    "cluster": "emulator",
                    "user": "beta-user",
                    "namespace": BETA_NAMESPACE,
                },
            },
        ],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.fixture
def envoy_admin(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real Envoy with a one-cluster static bootstrap; yields its admin (host, port)."""
    bootstrap = tmp_path / "envoy.yaml"
    bootstrap.write_text(yaml.safe_dump(ENVOY_BOOTSTRAP))
    address_file = tmp_path / "admin-address"
    log_file = tmp_path / "envoy.log"
    process = subprocess.Popen(
        [
            find_envoy(),
            "-c",
            str(bootstrap),
            "--admin-address-path",
            str(address_file),
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "-l",
            "warning",
            "--log-path",
            str(log_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (address_file.exists() and address_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                log = log_file.read_text() if log_file.exists() else ""
                pytest.fail(f"Envoy did not start (exit {process.returncode}):\n{log}")
            time.sleep(0.02)
        host, port = address_file.read_text().strip().rsplit(":", 1)
        yield host, int(port)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
