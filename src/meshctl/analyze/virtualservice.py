"""Checks of VirtualServices against the rest of the mesh: gateways, services, subsets, overlaps."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import (
    CONFLICTING_MESH_GATEWAY_HOSTS,
    HOST_NOT_IN_GATEWAY,
    INEFFECTIVE_MATCH,
    PORT_SELECTOR_REQUIRED,
    REFERENCED_RESOURCE_NOT_FOUND,
    UNREACHABLE_RULE,
    Finding,
    finding,
    go_list,
    go_quote,
)
from meshctl.config.kinds.networking import DestinationRule
from meshctl.config.kinds.networking.virtual_service import binds_to_mesh, gateway_reference
from meshctl.config.paths import FieldPath
from meshctl.config.resource import Resource
from meshctl.hostnames import fqdn, intersects, matches

SPEC: FieldPath = ("spec",)


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """Every VirtualService finding of the analysis."""
    subsets = _defined_subsets(ctx)
    for service in ctx.of("VirtualService"):
        yield from _gateways(ctx, service)
        yield from _destinations(ctx, subsets, service)
        yield from _delegates(ctx, service)
        yield from _unreachable_rules(service)
    yield from _mesh_host_conflicts(ctx)


def _gateways(ctx: AnalysisContext, service: Resource) -> Iterator[Finding]:
    hosts = service.spec.get("hosts") or []
    for position, name in enumerate(service.spec.get("gateways") or []):
        if name == "mesh":
            continue
        path = (*SPEC, "gateways", position)
        namespace, gateway_name = gateway_reference(name, service.namespace)
        gateway = ctx.find("Gateway", namespace, gateway_name)
        if gateway is None:
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, path,
                          f"Referenced gateway not found: {go_quote(name)}")
        elif hosts and not _gateway_takes_any(gateway, service.namespace, hosts):
            yield finding(HOST_NOT_IN_GATEWAY, service, path,
                          f"one or more host {go_list(hosts)} defined in VirtualService "
                          f"{service.namespace}/{service.name} not found in Gateway {namespace}/{gateway_name}.")


def _gateway_hosts(gateway: Resource, namespace: str) -> Iterator[str]:
    """The server hosts of `gateway` that VirtualServices of `namespace` may bind to."""
    for server in gateway.spec.get("servers") or []:
        for host in server.get("hosts") or []:
            scope, slash, name = host.partition("/")
            if not slash:
                yield host
            elif scope == "*" or scope == namespace or (scope == "." and gateway.namespace == namespace):
                yield name


def _gateway_takes_any(gateway: Resource, namespace: str, hosts: list[str]) -> bool:
    return any(intersects(allowed, host) for allowed in _gateway_hosts(gateway, namespace) for host in hosts)


def _route_destinations(spec: Mapping[str, Any]) -> Iterator[tuple[FieldPath, Mapping[str, Any], bool]]:
    """(path, destination, is_mirror) for every destination a VirtualService sends traffic to."""
    for kind in ("http", "tcp", "tls"):
        for rule_index, rule in enumerate(spec.get(kind) or []):
            for route_index, route in enumerate(rule.get("route") or []):
                yield (*SPEC, kind, rule_index, "route", route_index, "destination"), route["destination"], False
    for rule_index, rule in enumerate(spec.get("http") or []):
        if rule.get("mirror") is not None:
            yield (*SPEC, "http", rule_index, "mirror"), rule["mirror"], True
        for mirror_index, mirror in enumerate(rule.get("mirrors") or []):
            yield (*SPEC, "http", rule_index, "mirrors", mirror_index, "destination"), mirror["destination"], True


def _destinations(ctx: AnalysisContext, subsets: dict[str, set[str]], service: Resource) -> Iterator[Finding]:
    for path, destination, mirror in _route_destinations(service.spec):
        host = destination["host"]
        if ctx.has_registry:
            yield from _registry_destination(ctx, service, path, destination, mirror)
        subset = destination.get("subset")
        if subset and not _subset_defined(subsets, fqdn(host, service.namespace), subset):
            reftype = "mirror+subset in destinationrule" if mirror else "host+subset in destinationrule"
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, (*path, "subset"),
                          f"Referenced {reftype} not found: {go_quote(f'{host}+{subset}')}")


def _registry_destination(ctx: AnalysisContext, service: Resource, path: FieldPath,
                          destination: Mapping[str, Any], mirror: bool) -> Iterator[Finding]:
    host = destination["host"]
    matches = ctx.lookup(host, service.namespace)
    if not matches:
        reftype = "mirror host" if mirror else "host"
        yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, (*path, "host"),
                      f"Referenced {reftype} not found: {go_quote(host)}")
        return
    ports = [port.port for port in matches[0].ports]
    number = (destination.get("port") or {}).get("number")
    if number is None:
        if len(ports) > 1:
            yield finding(PORT_SELECTOR_REQUIRED, service, (*path, "host"),
                          f"This VirtualService routes to a service {go_quote(host)} that exposes multiple ports "
                          f"{go_list(ports)}. Specifying a port in the destination is required to disambiguate.")
    elif number not in ports:
        yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, (*path, "port", "number"),
                      f"Referenced host:port not found: {go_quote(f'{host}:{number}')}")


def _defined_subsets(ctx: AnalysisContext) -> dict[str, set[str]]:
    """Subset names per DestinationRule host (fully qualified in the rule's namespace)."""
    subsets: dict[str, set[str]] = defaultdict(set)
    for rule in ctx.of("DestinationRule"):
        spec = rule.view_as(DestinationRule)
        subsets[fqdn(spec.host, rule.namespace)].update(subset.name for subset in spec.subsets)
    return subsets


def _subset_defined(subsets: dict[str, set[str]], host: str, subset: str) -> bool:
    return any(subset in names and matches(pattern, host) for pattern, names in subsets.items())


def _delegates(ctx: AnalysisContext, service: Resource) -> Iterator[Finding]:
    for position, rule in enumerate(service.spec.get("http") or []):
        delegate = rule.get("delegate")
        if delegate is None:
            continue
        reference = f"{delegate.get('namespace') or service.namespace}/{delegate['name']}"
        namespace, _, name = reference.partition("/")
        if ctx.find("VirtualService", namespace, name) is None:
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, service, (*SPEC, "http", position, "delegate", "name"),
                          f"Referenced delegate VirtualService not found: {go_quote(reference)}")


def _rule_name(rule: Mapping[str, Any], position: int) -> str:
    name = rule.get("name")
    return go_quote(name) if name else f"#{position}"


def _match_key(match: Mapping[str, Any]) -> str:
    """A match's routing meaning, without its name, so that equal matches compare equal."""
    return json.dumps({key: value for key, value in match.items() if key != "name"}, sort_keys=True)


def _unreachable_rules(service: Resource) -> Iterator[Finding]:
    """Rules that can never match: after a rule without matches, or with only repeated matches."""
    for kind in ("http", "tcp", "tls"):
        seen: dict[str, str] = {}
        catch_all = False
        for position, rule in enumerate(service.spec.get(kind) or []):
            path = (*SPEC, kind, position)
            name = _rule_name(rule, position)
            matches = rule.get("match") or []
            if catch_all:
                yield finding(UNREACHABLE_RULE, service, path,
                              f"VirtualService rule {name} not used (only the last rule can have no matches).")
                continue
            if not matches:
                catch_all = True
                continue
            repeated = 0
            for match_position, match in enumerate(matches):
                key = _match_key(match)
                if key in seen:
                    repeated += 1
                    yield finding(INEFFECTIVE_MATCH, service, (*path, "match", match_position),
                                  f"VirtualService rule {name} match {_rule_name(match, match_position)} is not used "
                                  f"(duplicate/overlapping match in rule {seen[key]}).")
                else:
                    seen[key] = name
            if repeated == len(matches):
                yield finding(UNREACHABLE_RULE, service, path,
                              f"VirtualService rule {name} not used (all matches used by prior rules).")


def _mesh_host_conflicts(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0109: two VirtualServices for the same host on sidecars; only one of them would apply."""
    owners: dict[str, dict[tuple[str, str, str], tuple[Resource, int]]] = defaultdict(dict)
    for service in ctx.of("VirtualService"):
        if not binds_to_mesh(service.spec.get("gateways") or []):
            continue
        export_to = service.spec.get("exportTo") or ["*"]
        scopes = ["*"] if "*" in export_to else sorted({service.namespace if e == "." else e for e in export_to})
        for position, host in enumerate(service.spec.get("hosts") or []):
            for scope in scopes:
                owners[f"{scope}/{fqdn(host, service.namespace)}"].setdefault(service.key, (service, position))
    for scoped_host, by_service in owners.items():
        claims = list(by_service.values())
        if len(claims) < 2:
            continue
        names = ",".join(f"{service.namespace}/{service.name}" for service, _ in claims)
        for service, position in claims:
            yield finding(CONFLICTING_MESH_GATEWAY_HOSTS, service, (*SPEC, "hosts", position),
                          f"The VirtualServices {names} associated with mesh gateway define the same host "
                          f"{scoped_host} which can lead to undefined behavior. This can be fixed by merging the "
                          "conflicting VirtualServices into a single resource.")
