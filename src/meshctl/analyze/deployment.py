"""Deployments against the Services that select their pods (Istio's deployment analyzers).

A pod's inbound listeners come from every Service that selects it, so two Services that give
one port different protocols, or one targetPort different ports, leave Istio to pick one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.messages import (
    DEPLOYMENT_CONFLICTING_PORTS,
    DEPLOYMENT_MULTIPLE_SERVICES,
    INVALID_APPLICATION_UID,
)
from meshctl.config.kinds.kubernetes import ServiceSpec
from meshctl.config.resource import Resource
from meshctl.model.selectors import selects

__all__ = [
    "MANAGED_LABEL",
    "MESH_CONTROLLER",
    "PROXY_CONTAINER",
    "PROXY_UID",
    "application_uid",
    "service_association",
]

MANAGED_LABEL = "gateway.istio.io/managed"
MESH_CONTROLLER = "istio.io-mesh-controller"


def _selecting(ctx: AnalysisContext, deployment: Resource) -> list[Resource] | None:
    """The Services selecting the deployment's pods, or None when it is not in the mesh (no
    sidecar for its pods, or a waypoint Istio manages itself)."""
    if deployment.labels.get(MANAGED_LABEL) == MESH_CONTROLLER:
        return None
    replicas = ctx.registry.replicas(deployment.namespace, deployment.name)
    if not replicas or not replicas[0].injected:
        return None
    labels = replicas[0].labels
    return [service for service in ctx.of("Service") if service.namespace == deployment.namespace
            and (selector := service.view_as(ServiceSpec).selector) and selects(selector, labels)]


def service_association(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0116 (one port, several protocols) and IST0137 (one targetPort, several ports)."""
    for deployment in ctx.of("Deployment"):
        services = _selecting(ctx, deployment)
        if not services:
            continue
        protocols: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        targets: dict[str, dict[int, str]] = defaultdict(dict)
        for service in services:
            name = f"{service.namespace}/{service.name}"
            for port in service.view_as(ServiceSpec).ports:
                protocols[port.port][port.protocol or "TCP"].append(name)
                target = str(port.target_port) if port.target_port not in (None, 0, "") else str(port.port)
                targets[target][port.port] = name
        for number in sorted(protocols):
            if len(protocols[number]) > 1:
                names = sorted(name for group in protocols[number].values() for name in group)
                yield finding(DEPLOYMENT_MULTIPLE_SERVICES, deployment, ("metadata", "name"), deployment.name, number,
                              names)
        for target in sorted(targets):
            if len(targets[target]) > 1:
                yield finding(DEPLOYMENT_CONFLICTING_PORTS, deployment, ("metadata", "name"), deployment.name,
                              sorted(targets[target].values()), target, sorted(targets[target]))


PROXY_UID = 1337
PROXY_CONTAINER = "istio-proxy"


def _runs_as_proxy(pod_spec: Mapping[str, Any]) -> bool:
    """Whether a pod spec (as written: securityContext is not part of meshctl's typed view) runs
    the pod, or one of its application containers, as the proxy's UID."""
    def uid(holder: Any) -> Any:
        context = holder.get("securityContext") if isinstance(holder, Mapping) else None
        return context.get("runAsUser") if isinstance(context, Mapping) else None

    if uid(pod_spec) == PROXY_UID:
        return True
    containers = pod_spec.get("containers")
    return isinstance(containers, list) and any(
        uid(container) == PROXY_UID for container in containers
        if isinstance(container, Mapping) and container.get("name") != PROXY_CONTAINER)


def application_uid(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0144: the sidecar's iptables rules let traffic of UID 1337 bypass the proxy, so an
    application running as that user escapes the mesh (and its policies)."""
    for pod in ctx.of("Pod"):
        if _runs_as_proxy(pod.spec):
            yield finding(INVALID_APPLICATION_UID, pod, ("spec",))
    for deployment in ctx.of("Deployment"):
        template = deployment.spec.get("template")
        pod_spec = template.get("spec") if isinstance(template, Mapping) else None
        if isinstance(pod_spec, Mapping) and _runs_as_proxy(pod_spec):
            yield finding(INVALID_APPLICATION_UID, deployment, ("spec", "template", "spec"))
