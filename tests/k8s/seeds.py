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


# Objects as a client writes them (the API server fills in the rest).


def service(name: str, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": "http", "port": 9080}], "selector": {"app": name}}}


def pod(name: str, ip: str, *, phase: str = "Running", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "reviews"},
                     "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
        "spec": {"containers": [{"name": "app", "image": "reviews:1", "ports": [{"containerPort": 9080}],
                                 "livenessProbe": {"httpGet": {"port": 9080}}, "aFieldOfTomorrow": True}],
                 "dnsPolicy": "ClusterFirst", "nodeName": "node-1"},
        "status": {"phase": phase, "podIP": ip, "containerStatuses": [{"name": "app", "restartCount": 0}],
                   "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}], **extra},
    }


def virtual_service(name: str, host: str = "reviews", **route: Any) -> dict[str, Any]:
    destination = {"host": host, **route}
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"hosts": [host], "http": [{"route": [{"destination": destination}]}]}}
