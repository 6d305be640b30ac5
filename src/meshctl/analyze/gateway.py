"""Checks of Gateways against the workloads and Services of the input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding, selector_text
from meshctl.analyze.messages import (
    CONFLICTING_GATEWAYS,
    GATEWAY_DUPLICATE_CERTIFICATE,
    GATEWAY_PORT_NOT_ON_SERVICE,
    REFERENCED_RESOURCE_NOT_FOUND,
)
from meshctl.config.kinds.kubernetes import ServiceSpec
from meshctl.config.kinds.networking import Gateway
from meshctl.config.kinds.networking.gateway import ServerTLSSettings
from meshctl.config.resource import Resource
from meshctl.hostnames import intersects
from meshctl.model.selectors import selects
from meshctl.model.service import Workload

__all__ = ["check", "conflicts", "duplicate_certificates"]


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """Gateway findings; they need workloads (given, or Istio's assumed ingress gateway), or
    every selector would look dangling."""
    if not ctx.registry.workloads:
        return
    for gateway in ctx.of("Gateway"):
        selector = gateway.view_as(Gateway).selector
        workloads = [workload for workload in ctx.registry.workloads if selects(selector, workload.labels)]
        if not workloads:
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, gateway, ("spec", "selector", min(selector, default="")),
                          "selector", selector_text(selector))
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
                          number, selector_text(selector))


def _share_workloads(ctx: AnalysisContext, one: Mapping[str, str], other: Mapping[str, str]) -> bool:
    """Whether two gateway selectors configure the same proxies: equal, or both picking a pod."""
    return one == other or any(selects(one, workload.labels) and selects(other, workload.labels)
                               for workload in ctx.registry.workloads)


def conflicts(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0145: two Gateways of the same gateway proxies serving overlapping hosts on one port;
    the proxy can honour only one of them."""
    servers: dict[int, list[tuple[str, Mapping[str, str], tuple[str, ...]]]] = {}
    for gateway in ctx.of("Gateway"):
        spec = gateway.view_as(Gateway)
        for server in spec.servers:
            servers.setdefault(server.port.number, []).append(
                (f"{gateway.namespace}/{gateway.name}", spec.selector, server.hosts))
    for gateway in ctx.of("Gateway"):
        spec = gateway.view_as(Gateway)
        own = f"{gateway.namespace}/{gateway.name}"
        for server in spec.servers:
            rivals = [name for name, selector, hosts in sorted(servers.get(server.port.number, []), key=lambda s: s[0])
                      if name != own and _share_workloads(ctx, spec.selector, selector)
                      for host in server.hosts if any(intersects(host, theirs) for theirs in hosts)]
            if rivals:
                yield finding(CONFLICTING_GATEWAYS, gateway, (), ",".join(rivals), selector_text(spec.selector),
                              str(server.port.number), ",".join(server.hosts))


def _same_certificate(one: ServerTLSSettings, other: ServerTLSSettings) -> bool:
    """The same credential, or the same certificate and key files."""
    if one.credential_name and other.credential_name:
        return one.credential_name == other.credential_name
    if one.credential_name or other.credential_name:
        return False
    return bool(one.server_certificate and one.server_certificate == other.server_certificate
                and one.private_key and one.private_key == other.private_key)


def duplicate_certificates(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0138: one certificate on two Gateways of the same proxies; clients that reuse an
    HTTP/2 connection across their hosts get 404s (envoyproxy/envoy#6767)."""
    for gateway in ctx.of("Gateway"):
        spec = gateway.view_as(Gateway)
        own = f"{gateway.namespace}/{gateway.name}"
        for other in ctx.of("Gateway"):
            other_spec = other.view_as(Gateway)
            if other is gateway or not selects(spec.selector, other_spec.selector):
                continue
            for server in spec.servers:
                for theirs in other_spec.servers:
                    if server.tls is not None and theirs.tls is not None and _same_certificate(server.tls, theirs.tls):
                        yield finding(GATEWAY_DUPLICATE_CERTIFICATE, gateway, ("metadata", "name"),
                                      [own, f"{other.namespace}/{other.name}"])
