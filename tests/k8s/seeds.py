"""What tests seed the emulator with: objects shaped as the API server returns them, and the
names the kubeconfig fixture uses for its two contexts."""

from __future__ import annotations

from typing import Any

from emulator import MeshEmulator

ALPHA_TOKEN = "alpha-token"
BETA_TOKEN = "beta-token"
BETA_NAMESPACE = "team-b"


def add_pod(
    emulator: MeshEmulator,
    name: str,
    namespace: str = "default",
    *,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    containers: tuple[str, ...] = ("app", "istio-proxy"),
) -> None:
    """Store a pod the way the API server would return it."""
    emulator.apply({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"containers": [{"name": c, "image": f"{c}:1"} for c in containers]},
        "status": {"phase": phase},
    })


def add_deployment(
    emulator: MeshEmulator, name: str, namespace: str, selector: dict[str, Any]
) -> None:
    emulator.apply({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": selector,
            "template": {
                "metadata": {"labels": selector.get("matchLabels", {})},
                "spec": {"containers": []},
            },
        },
    })
