"""Checks of Gateways against the workloads and Services of the input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from meshctl.analyze.finding import (
    GATEWAY_PORT_NOT_ON_SERVICE,
    REFERENCED_RESOURCE_NOT_FOUND,
    Finding,
    finding,
    go_quote,
)
from meshctl.analyze.index import MeshIndex, Workload, selects
from meshctl.config.resource import Resource


def selector_text(selector: Mapping[str, str]) -> str:
    """A label selector the way Kubernetes prints one: `app=x,version=v1`, keys sorted."""
    return ",".join(f"{key}={selector[key]}" for key in sorted(selector))


def check(index: MeshIndex) -> Iterator[Finding]:
    """Gateway findings; they need workloads in the input, or every selector would look dangling."""
    if not index.has_workloads:
        return
    for gateway in index.of("Gateway"):
        selector = gateway.spec.get("selector") or {}
        workloads = [workload for workload in index.workloads if selects(selector, workload.labels)]
        if not workloads:
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, gateway, ("spec", "selector"),
                          f"Referenced selector not found: {go_quote(selector_text(selector))}")
            continue
        yield from _ports_on_services(index, gateway, selector, workloads)


def _service_ports(index: MeshIndex, workloads: list[Workload]) -> set[int] | None:
    """TCP ports (and target ports) of the Services in front of `workloads`; None if there are none."""
    ports: set[int] = set()
    fronted = False
    for service in index.of("Service"):
        selector = service.spec.get("selector") or {}
        if not selector or not any(
                workload.namespace == service.namespace and selects(selector, workload.labels)
                for workload in workloads):
            continue
        fronted = True
        for port in service.spec.get("ports") or []:
            if (port.get("protocol") or "TCP") == "TCP":
                ports.add(port["port"])
                if isinstance(port.get("targetPort"), int):
                    ports.add(port["targetPort"])
    return ports if fronted else None


def _ports_on_services(index: MeshIndex, gateway: Resource, selector: Mapping[str, str],
                       workloads: list[Workload]) -> Iterator[Finding]:
    """IST0162: a server port that no Service in front of the gateway pods exposes is unreachable."""
    ports = _service_ports(index, workloads)
    if ports is None:
        return
    for position, server in enumerate(gateway.spec.get("servers") or []):
        number = server["port"].get("number")
        if number and number not in ports:
            yield finding(GATEWAY_PORT_NOT_ON_SERVICE, gateway, ("spec", "servers", position, "port", "number"),
                          f"The gateway is listening on a target port (port {number}) that is not defined in the "
                          f"Service associated with its workload instances (Pod selector {selector_text(selector)}). "
                          "If you need to access the gateway port through the gateway Service, it will not be "
                          "available.")
