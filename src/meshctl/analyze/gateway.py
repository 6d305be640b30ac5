"""Checks of Gateways against the workloads and Services of the input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import (
    GATEWAY_PORT_NOT_ON_SERVICE,
    REFERENCED_RESOURCE_NOT_FOUND,
    Finding,
    finding,
    go_quote,
)
from meshctl.config.kinds.kubernetes import ServiceSpec
from meshctl.config.kinds.networking import Gateway
from meshctl.config.resource import Resource
from meshctl.model.selectors import selects
from meshctl.model.service import Workload


def selector_text(selector: Mapping[str, str]) -> str:
    """A label selector the way Kubernetes prints one: `app=x,version=v1`, keys sorted."""
    return ",".join(f"{key}={selector[key]}" for key in sorted(selector))


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """Gateway findings; they need workloads in the input, or every selector would look dangling."""
    if not ctx.has_workloads:
        return
    for gateway in ctx.of("Gateway"):
        selector = gateway.view_as(Gateway).selector
        workloads = [workload for workload in ctx.registry.workloads if selects(selector, workload.labels)]
        if not workloads:
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, gateway, ("spec", "selector"),
                          f"Referenced selector not found: {go_quote(selector_text(selector))}")
            continue
        yield from _ports_on_services(ctx, gateway, selector, workloads)


def _service_ports(ctx: AnalysisContext, workloads: list[Workload]) -> set[int] | None:
    """TCP ports (and target ports) of the Services in front of `workloads`; None if there are none."""
    fronting = {id(service): service for workload in workloads for service in ctx.registry.services_of(workload)}
    if not fronting:
        return None
    ports: set[int] = set()
    for service in fronting.values():
        for port in service.source.view_as(ServiceSpec).ports:
            if port.protocol == "TCP":
                ports.add(port.port)
                if isinstance(port.target_port, int):
                    ports.add(port.target_port)
    return ports


def _ports_on_services(ctx: AnalysisContext, gateway: Resource, selector: Mapping[str, str],
                       workloads: list[Workload]) -> Iterator[Finding]:
    """IST0162: a server port that no Service in front of the gateway pods exposes is unreachable."""
    ports = _service_ports(ctx, workloads)
    if ports is None:
        return
    for position, server in enumerate(gateway.view_as(Gateway).servers):
        number = server.port.number
        if number and number not in ports:
            yield finding(GATEWAY_PORT_NOT_ON_SERVICE, gateway, ("spec", "servers", position, "port", "number"),
                          f"The gateway is listening on a target port (port {number}) that is not defined in the "
                          f"Service associated with its workload instances (Pod selector {selector_text(selector)}). "
                          "If you need to access the gateway port through the gateway Service, it will not be "
                          "available.")
