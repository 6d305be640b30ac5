"""Checks of Kubernetes Services: port names that let Istio know the protocol."""

from __future__ import annotations

from collections.abc import Iterator

from meshctl import protocols
from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.messages import PORT_NAME_CONVENTION
from meshctl.config.kinds.kubernetes import ServiceSpec

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "local-path-storage", "istio-system"})


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0118: without `<protocol>[-suffix]` names or appProtocol, Istio falls back to sniffing."""
    for service in ctx.of("Service"):
        if service.namespace in SYSTEM_NAMESPACES:
            continue
        for position, port in enumerate(service.view_as(ServiceSpec).ports):
            if port.app_protocol or protocols.known(port.name.split("-", 1)[0]):
                continue
            target = port.port if port.target_port is None else port.target_port
            yield finding(PORT_NAME_CONVENTION, service, ("spec", "ports", position), port.name, port.port, target)
