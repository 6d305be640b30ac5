"""Checks of VirtualServices against the rest of the mesh: gateways, services, subsets, overlaps."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator, Sequence

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.messages import (
    CONFLICTING_MESH_GATEWAY_HOSTS,
    HOST_NOT_IN_GATEWAY,
    INEFFECTIVE_MATCH,
    PORT_SELECTOR_REQUIRED,
    REFERENCED_RESOURCE_NOT_FOUND,
    UNREACHABLE_RULE,
    go_quote,
)
from meshctl.config.kinds.networking import DestinationRule, Gateway, VirtualService
from meshctl.config.kinds.networking.fields import Destination
from meshctl.config.kinds.networking.http import HTTPMatchRequest
from meshctl.config.kinds.networking.virtual_service import (
    HTTPRoute,
    HTTPRouteDestination,
    L4MatchAttributes,
    RouteDestination,
    TCPRoute,
    TLSMatchAttributes,
    TLSRoute,
    binds_to_mesh,
    gateway_reference,
)
from meshctl.config.paths import FieldPath
from meshctl.config.resource import Resource
from meshctl.hostnames import fqdn, intersects, matches
from meshctl.model.selectors import export_set

SPEC: FieldPath = ("spec",)

Match = HTTPMatchRequest | TLSMatchAttributes | L4MatchAttributes


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """Every VirtualService finding of the analysis."""
    subsets = _defined_subsets(ctx)
    for service in ctx.of("VirtualService"):
        spec = service.view_as(VirtualService)
        yield from _gateways(ctx, service, spec)
        yield from _destinations(ctx, subsets, service, spec)
        yield from _delegates(ctx, service, spec)
        yield from _unreachable_rules(service, spec)
    yield from _mesh_host_conflicts(ctx)


def _gateways(ctx: AnalysisContext, service: Resource, spec: VirtualService) -> Iterator[Finding]:
    for position, name in enumerate(spec.gateways):
        if name == "mesh":
            continue
        path = (*SPEC, "gateways", position)
        namespace, gateway_name = gateway_reference(name, service.namespace)
        gateway = ctx.find("Gateway", namespace, gateway_name)
        if gateway is None:
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, path, "gateway", name)
        elif spec.hosts and not _gateway_takes_any(gateway, service.namespace, spec.hosts):
            yield finding(HOST_NOT_IN_GATEWAY, service, path, list(spec.hosts), f"{service.namespace}/{service.name}",
                          f"{namespace}/{gateway_name}")


def _gateway_hosts(gateway: Resource, namespace: str) -> Iterator[str]:
    """The server hosts of `gateway` that VirtualServices of `namespace` may bind to."""
    for server in gateway.view_as(Gateway).servers:
        for host in server.hosts:
            scope, slash, name = host.partition("/")
            if not slash:
                yield host
            elif scope == "*" or scope == namespace or (scope == "." and gateway.namespace == namespace):
                yield name


def _gateway_takes_any(gateway: Resource, namespace: str, hosts: Sequence[str]) -> bool:
    return any(intersects(allowed, host) for allowed in _gateway_hosts(gateway, namespace) for host in hosts)


def _route_destinations(spec: VirtualService) -> Iterator[tuple[FieldPath, Destination, bool]]:
    """(path, destination, is_mirror) for every destination a VirtualService sends traffic to."""
    sections: tuple[tuple[str, Sequence[Sequence[HTTPRouteDestination | RouteDestination]]], ...] = (
        ("http", [rule.route for rule in spec.http]),
        ("tcp", [rule.route for rule in spec.tcp]),
        ("tls", [rule.route for rule in spec.tls]),
    )
    for kind, rules in sections:
        for rule_index, routes in enumerate(rules):
            for route_index, route in enumerate(routes):
                yield (*SPEC, kind, rule_index, "route", route_index, "destination"), route.destination, False
    for rule_index, http in enumerate(spec.http):
        if http.mirror is not None:
            yield (*SPEC, "http", rule_index, "mirror"), http.mirror, True
        for mirror_index, mirror in enumerate(http.mirrors):
            yield (*SPEC, "http", rule_index, "mirrors", mirror_index, "destination"), mirror.destination, True


def _destinations(ctx: AnalysisContext, subsets: dict[str, set[str]], service: Resource,
                  spec: VirtualService) -> Iterator[Finding]:
    for path, destination, mirror in _route_destinations(spec):
        if ctx.has_registry:
            yield from _registry_destination(ctx, service, path, destination, mirror)
        subset = destination.subset
        if subset and not _subset_defined(subsets, fqdn(destination.host, service.namespace), subset):
            reftype = "mirror+subset in destinationrule" if mirror else "host+subset in destinationrule"
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, (*path, "subset"), reftype,
                          f"{destination.host}+{subset}")


def _registry_destination(ctx: AnalysisContext, service: Resource, path: FieldPath,
                          destination: Destination, mirror: bool) -> Iterator[Finding]:
    host = destination.host
    found = ctx.lookup(host, service.namespace)
    if not found:
        reftype = "mirror host" if mirror else "host"
        yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, (*path, "host"), reftype, host)
        return
    ports = [port.port for port in found[0].ports]
    number = destination.port.number if destination.port is not None else 0
    if not number:
        if len(ports) > 1:
            yield finding(PORT_SELECTOR_REQUIRED, service, (*path, "host"), host, ports)
    elif number not in ports:
        yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, (*path, "port", "number"), "host:port",
                      f"{host}:{number}")


def _defined_subsets(ctx: AnalysisContext) -> dict[str, set[str]]:
    """Subset names per DestinationRule host (fully qualified in the rule's namespace)."""
    subsets: dict[str, set[str]] = defaultdict(set)
    for rule in ctx.of("DestinationRule"):
        spec = rule.view_as(DestinationRule)
        subsets[fqdn(spec.host, rule.namespace)].update(subset.name for subset in spec.subsets)
    return subsets


def _subset_defined(subsets: dict[str, set[str]], host: str, subset: str) -> bool:
    return any(subset in names and matches(pattern, host) for pattern, names in subsets.items())


def _delegates(ctx: AnalysisContext, service: Resource, spec: VirtualService) -> Iterator[Finding]:
    for position, rule in enumerate(spec.http):
        if rule.delegate is None:
            continue
        namespace = rule.delegate.namespace or service.namespace
        if ctx.find("VirtualService", namespace, rule.delegate.name) is None:
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, (*SPEC, "http", position, "delegate", "name"),
                          "delegate VirtualService", f"{namespace}/{rule.delegate.name}")


def _rule_name(name: str, position: int) -> str:
    return go_quote(name) if name else f"#{position}"


def _routing_meaning(match: Match) -> Match:
    """A match without its name, so that matches that route alike compare equal."""
    return dataclasses.replace(match, name="") if isinstance(match, HTTPMatchRequest) else match


def _unreachable_rules(service: Resource, spec: VirtualService) -> Iterator[Finding]:
    """Rules that can never match: after a rule without matches, or with only repeated matches."""
    sections: tuple[tuple[str, Sequence[HTTPRoute | TCPRoute | TLSRoute]], ...] = (
        ("http", spec.http), ("tcp", spec.tcp), ("tls", spec.tls))
    for kind, rules in sections:
        seen: list[tuple[Match, str]] = []
        catch_all = False
        for position, rule in enumerate(rules):
            path = (*SPEC, kind, position)
            name = _rule_name(rule.name if isinstance(rule, HTTPRoute) else "", position)
            matches: Sequence[Match] = rule.match
            if catch_all:
                yield finding(UNREACHABLE_RULE, service, path, name, "only the last rule can have no matches")
                continue
            if not matches:
                catch_all = True
                continue
            repeated = 0
            for match_position, match in enumerate(matches):
                meaning = _routing_meaning(match)
                earlier = next((owner for other, owner in seen if other == meaning), None)
                if earlier is not None:
                    repeated += 1
                    match_name = _rule_name(match.name if isinstance(match, HTTPMatchRequest) else "", match_position)
                    yield finding(INEFFECTIVE_MATCH, service, (*path, "match", match_position), name, match_name,
                                  earlier)
                else:
                    seen.append((meaning, name))
            if repeated == len(matches):
                yield finding(UNREACHABLE_RULE, service, path, name, "all matches used by prior rules")


def _mesh_host_conflicts(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0109: two VirtualServices for the same host on sidecars; only one of them would apply.

    Like istioctl, each VirtualService's message names all of them. The message is built once
    per host and shared by its findings, so n VirtualServices on one host cost O(n) memory, not
    n messages of n names each.
    """
    owners: dict[str, dict[tuple[str, str, str], tuple[Resource, int]]] = defaultdict(dict)
    for service in ctx.of("VirtualService"):
        spec = service.view_as(VirtualService)
        if not binds_to_mesh(spec.gateways):
            continue
        scopes = sorted(export_set(spec.export_to, service.namespace))
        for position, host in enumerate(spec.hosts):
            for scope in scopes:
                owners[f"{scope}/{fqdn(host, service.namespace)}"].setdefault(service.key, (service, position))
    for scoped_host, by_service in owners.items():
        claims = list(by_service.values())
        if len(claims) < 2:
            continue
        names = ",".join(f"{service.namespace}/{service.name}" for service, _ in claims)
        message = CONFLICTING_MESH_GATEWAY_HOSTS.text(names, scoped_host)
        for service, position in claims:
            yield Finding(CONFLICTING_MESH_GATEWAY_HOSTS, message, service, (*SPEC, "hosts", position))
