"""Fixtures for the Kubernetes paths: an emulated API server, a kubeconfig for it, a real Envoy.

Every test gets a fresh emulator (starting one takes milliseconds), so no state leaks between
tests. The kubeconfig has two contexts on the same server: `alpha` (current, no namespace, so
"default" applies) and `beta` (namespace `team-b`); they log in with different tokens, so a
test can tell from the requests which context the client used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from emulator import BackgroundEmulator, MeshEmulator
from envoy_harness import processes  # noqa: F401  (fixture)
from seeds import ALPHA_TOKEN, BETA_NAMESPACE, BETA_TOKEN

from meshctl.loopback import Envoy

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
    envoy = Envoy.start(yaml.safe_dump(ENVOY_BOOTSTRAP), tmp_path, "envoy")
    try:
        yield "127.0.0.1", envoy.admin_port
    finally:
        envoy.stop()
