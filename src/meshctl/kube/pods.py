"""Running pods, found by name, by Deployment or by label selector.

Only a running pod has an Envoy to read or an istiod to ask, so every lookup here returns
running pods only, sorted by name, and says plainly when there is none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshctl.errors import MeshctlError, UsageError
from meshctl.targets import USAGE, Target, parse_target

if TYPE_CHECKING:
    from kubernetes.client import V1LabelSelector

    from meshctl.kube.client import KubeClient

__all__ = [
    "PodRef",
    "deployment_pod",
    "resolve_pods",
    "resolve_target",
    "running_pod",
    "running_pods",
    "selector_string",
]

RUNNING = "status.phase=Running"


@dataclass(frozen=True, slots=True, order=True)
class PodRef:
    """A pod by name and namespace; prints as `NAME.NS`, the form istioctl uses for proxy IDs."""

    name: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.name}.{self.namespace}"


def resolve_pods(
    client: KubeClient, target: str | None, selector: str | None, namespace: str | None = None
) -> list[PodRef]:
    """The running pods a target or a `-l` selector names, sorted by name.

    `POD[.NS]` must be running; `deploy/NAME[.NS]` gives the first running pod (by name) that
    the Deployment's selector matches; `selector` gives every running pod it matches.
    `namespace` (`-n`) defaults to the context's namespace.
    """
    namespace = namespace or client.namespace
    if target and selector:
        raise UsageError("give either a pod or -l/--selector, not both")
    if selector:
        pods = running_pods(client, namespace, selector)
        if not pods:
            raise MeshctlError(f'no running pods match "{selector}" in namespace "{namespace}"')
        return pods
    if not target:
        raise UsageError(f"name a pod ({USAGE}) or give -l/--selector")
    return [resolve_target(client, parse_target(target, namespace))]


def resolve_target(client: KubeClient, target: Target) -> PodRef:
    """The running pod a target names: the pod itself, or a Deployment's first running pod."""
    if target.is_pod:
        return running_pod(client, target.name, target.namespace)
    return deployment_pod(client, target.name, target.namespace)


def running_pods(client: KubeClient, namespace: str, selector: str) -> list[PodRef]:
    """Running pods matching a label selector, sorted by name (possibly none)."""
    with client.api_errors(f'cannot list pods in namespace "{namespace}"'):
        listing = client.core.list_namespaced_pod(
            namespace, label_selector=selector, field_selector=RUNNING, _request_timeout=client.timeout
        )
    return sorted(PodRef(pod.metadata.name, namespace) for pod in listing.items if pod.metadata and pod.metadata.name)


def running_pod(client: KubeClient, name: str, namespace: str) -> PodRef:
    """The pod of that name, which must exist and be running."""
    with client.api_errors(
        f'cannot read pod "{name}" in namespace "{namespace}"',
        not_found=f'pods "{name}" not found in namespace "{namespace}"',
    ):
        pod = client.core.read_namespaced_pod(name, namespace, _request_timeout=client.timeout)
    phase = (pod.status.phase if pod.status else None) or "unknown"
    if phase != "Running":
        raise MeshctlError(f'pod "{name}" in namespace "{namespace}" is not running (phase {phase})')
    return PodRef(name, namespace)


def deployment_pod(client: KubeClient, name: str, namespace: str) -> PodRef:
    """The first running pod (by name) that a Deployment's selector matches, as istioctl picks."""
    with client.api_errors(
        f'cannot read deployment "{name}" in namespace "{namespace}"',
        not_found=f'deployments "{name}" not found in namespace "{namespace}"',
    ):
        deployment = client.apps.read_namespaced_deployment(name, namespace, _request_timeout=client.timeout)
    selector = selector_string(deployment.spec.selector if deployment.spec else None)
    if not selector:
        raise MeshctlError(f'deployment "{name}" in namespace "{namespace}" has no selector')
    pods = running_pods(client, namespace, selector)
    if not pods:
        raise MeshctlError(f'deployment "{name}" in namespace "{namespace}" has no running pods')
    return pods[0]


def selector_string(selector: V1LabelSelector | None) -> str:
    """A LabelSelector object (a Deployment's `spec.selector`) as a `labelSelector` query."""
    if selector is None:
        return ""
    parts = [f"{key}={value}" for key, value in sorted((selector.match_labels or {}).items())]
    for expression in selector.match_expressions or []:
        values = ",".join(expression.values or [])
        parts.append(
            {
                "In": f"{expression.key} in ({values})",
                "NotIn": f"{expression.key} notin ({values})",
                "Exists": expression.key,
                "DoesNotExist": f"!{expression.key}",
            }[expression.operator]
        )
    return ",".join(parts)
