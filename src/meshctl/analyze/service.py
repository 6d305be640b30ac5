"""Checks of Kubernetes Services: port names that let Istio know the protocol."""

from __future__ import annotations

from collections.abc import Iterator

from meshctl import protocols
from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.inputs import SYSTEM_NAMESPACES
from meshctl.analyze.messages import EXTERNAL_NAME_INVALID_PORT_NAME, PORT_NAME_CONVENTION
from meshctl.config.kinds.kubernetes import ServiceSpec
from meshctl.config.resource import Resource

__all__ = ["MANAGED_GATEWAY_LABEL", "check"]

MANAGED_GATEWAY_LABEL = "gateway.istio.io/managed"


def _skipped(service: Resource) -> bool:
    """Services Istio does not ask to follow its naming: Kubernetes' own namespaces, Istio's
    control plane (labelled `istio: ...` or `release: istio`), and the gateways and waypoints
    Istio deploys itself, whose ports declare their protocols their own way."""
    labels = service.labels
    return (service.namespace in SYSTEM_NAMESPACES or "istio" in labels or labels.get("release") == "istio"
            or MANAGED_GATEWAY_LABEL in labels)


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0118: without `<protocol>[-suffix]` names or appProtocol, Istio falls back to sniffing.
    IST0150 instead for an ExternalName Service, whose unnamed (or `tcp`) ports Istio's proxy
    cannot forward by name."""
    for service in ctx.of("Service"):
        if _skipped(service):
            continue
        spec = service.view_as(ServiceSpec)
        external = spec.type == "ExternalName"
        for position, port in enumerate(spec.ports):
            protocol = protocols.from_kubernetes_port(port.name, port.port, port.protocol, port.app_protocol)
            if protocol != protocols.UNSUPPORTED and not (external and port.name == "tcp"):
                continue
            path = ("spec", "ports", position)
            if external:
                yield finding(EXTERNAL_NAME_INVALID_PORT_NAME, service, path)
            else:
                target = port.port if port.target_port is None else port.target_port
                yield finding(PORT_NAME_CONVENTION, service, path, port.name, port.port, target)
