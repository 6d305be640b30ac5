"""Services the routing config names but the input lacks, made up so the config can be rendered.

A user holding only a VirtualService wants to see the routes, clusters and listeners it
produces; Istio would produce nothing for hosts its registry does not have (a route to an
unknown host is dropped). So for every Kubernetes service name a VirtualService or
DestinationRule uses (`reviews`, read in the rule's namespace, or `reviews.shop.svc.cluster.local`;
Istio reads `reviews.shop` as written) that no Service or ServiceEntry of the input provides, a
Service is made up: in the namespace the name
points at, with the ports the config names (route destinations, match ports, port-level
policies) or port 80, each named for the protocol of the rule that uses it (`http-9080`,
`tcp-3306`, `tls-443`), and without a selector, so it has no endpoints. Names that are not
Kubernetes service names (`api.example.com`, wildcards) are left alone: they take a
ServiceEntry, which only the user can write. Every choice is reported in `notes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshctl.config.kinds import KINDS
from meshctl.config.kinds.networking.destination_rule import DestinationRule
from meshctl.config.kinds.networking.virtual_service import VirtualService
from meshctl.config.resource import Origin, Resource
from meshctl.hostnames import DEFAULT_DOMAIN, fqdn
from meshctl.model.registry import build_registry

__all__ = ["DEFAULT_PORT", "IMPLIED_ANNOTATION", "Implied", "implied_services", "sidecar_namespace"]

DEFAULT_PORT = 80
HTTP, TCP, TLS = "http", "tcp", "tls"


@dataclass(frozen=True, slots=True)
class Implied:
    """The Services made up for the input, and one line per choice made (or not made)."""

    services: tuple[Resource, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(slots=True)
class _Needed:
    """One missing service: the ports each kind of rule asked for, and who asked first."""

    name: str
    namespace: str
    origin: Origin
    users: list[str] = field(default_factory=list)
    ports: dict[int, str] = field(default_factory=dict)
    unported: set[str] = field(default_factory=set)

    def port(self, number: int, protocol: str) -> None:
        if number:
            self.ports.setdefault(number, protocol)
        else:
            self.unported.add(protocol)


Use = Callable[[str, str, Resource, int, str], None]
"""Reports one use of a host: (host, namespace it is read in, user, port or 0, protocol)."""


def implied_services(resources: Sequence[Resource], domain: str = DEFAULT_DOMAIN) -> Implied:
    """Services for the Kubernetes service names the routing config uses and the input lacks."""
    registry = build_registry(resources)
    needed: dict[str, _Needed] = {}
    foreign: dict[str, str] = {}

    def use(host: str, namespace: str, user: Resource, number: int, protocol: str) -> None:
        hostname = fqdn(host, namespace, domain)
        if registry.services_for_host(hostname):
            return
        parts = _service_name(hostname, domain)
        if parts is None:
            foreign.setdefault(hostname, user.ref())
            return
        entry = needed.setdefault(hostname, _Needed(*parts, user.origin))
        if user.ref() not in entry.users:
            entry.users.append(user.ref())
        entry.port(number, protocol)

    for resource in resources:
        if resource.kind == "VirtualService":
            _virtual_service(resource, use, domain)
        elif resource.kind == "DestinationRule":
            rule = resource.view_as(DestinationRule)
            policy = rule.traffic_policy
            numbers = [setting.port.number for setting in policy.port_level_settings] if policy else []
            for number in numbers or [0]:
                use(rule.host, resource.namespace, resource, number, HTTP)
    entries = [needed[host] for host in sorted(needed)]
    services = tuple(_service(entry) for entry in entries)
    notes = [_note(entry, service) for entry, service in zip(entries, services, strict=True)]
    notes += [f"{host} (named by {user}) is not a Kubernetes service name: nothing made up for it; "
              "a ServiceEntry would define it" for host, user in sorted(foreign.items())]
    return Implied(services, tuple(notes))


def _virtual_service(resource: Resource, use: Use, domain: str) -> None:
    """The hosts a VirtualService answers for (at its match ports) and those it routes to.

    Its own hosts count only when they are service names: a gateway's VirtualService answers
    for outside names (`bookinfo.example.com`) that no Service is expected to have.
    """
    spec = resource.view_as(VirtualService)
    namespace = resource.namespace
    rules: list[tuple[str, Sequence[Any]]] = [(HTTP, spec.http), (TCP, spec.tcp), (TLS, spec.tls)]
    for protocol, routes in rules:
        ports = [match.port for rule in routes for match in rule.match if match.port] or [0]
        for host in spec.hosts if routes else ():
            if _service_name(fqdn(host, namespace, domain), domain) is not None:
                for number in ports:
                    use(host, namespace, resource, number, protocol)
        for rule in routes:
            destinations = [route.destination for route in rule.route]
            if protocol == HTTP:
                destinations += [mirror.destination for mirror in rule.mirrors]
                destinations += [rule.mirror] if rule.mirror is not None else []
            for destination in destinations:
                port = destination.port.number if destination.port else 0
                use(destination.host, namespace, resource, port, protocol)


def _service_name(hostname: str, domain: str) -> tuple[str, str] | None:
    """(name, namespace) of a `NAME.NS.svc.DOMAIN` host; None for any other name."""
    suffix = f".svc.{domain}"
    if not hostname.endswith(suffix) or "*" in hostname:
        return None
    parts = hostname.removesuffix(suffix).split(".")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


IMPLIED_ANNOTATION = "meshctl.io/implied-by"
"""Marks a made-up Service with the objects that named it."""


def _service(entry: _Needed) -> Resource:
    """The made-up Service, typed like one read from a file. Without any port named, it gets
    port 80 for the protocol of the rules that use it (HTTP first)."""
    ports = dict(entry.ports) or {DEFAULT_PORT: min(entry.unported, key=_PROTOCOL_ORDER.index)}
    body = {"ports": [{"name": f"{protocol}-{number}", "port": number, "protocol": "TCP"}
                      for number, protocol in sorted(ports.items())]}
    revision = hashlib.blake2b(repr((entry.namespace, entry.name, body)).encode(), digest_size=12).hexdigest()
    return Resource(kind="Service", group="", version="v1", namespace=entry.namespace, name=entry.name, spec=body,
                    origin=entry.origin, revision=revision, annotations={IMPLIED_ANNOTATION: ", ".join(entry.users)},
                    view=KINDS[("", "Service")].view_of(body))


_PROTOCOL_ORDER = (HTTP, TCP, TLS)


def _note(entry: _Needed, service: Resource) -> str:
    ports = ", ".join(f"{p['port']}/{p['name'].split('-')[0]}" for p in service.spec["ports"])
    return (f"Service {entry.namespace}/{entry.name} made up (port {ports}, no endpoints): "
            f"named by {', '.join(entry.users)}, absent from the input")


def sidecar_namespace(resources: Iterable[Resource], fallback: str) -> tuple[str, str]:
    """The namespace to render a generic sidecar in: the one the input's objects are in, or
    `fallback` (`-n`) when they span several; and a note when that choice was not obvious."""
    namespaces = sorted({resource.namespace for resource in resources if resource.namespace})
    if len(namespaces) == 1:
        return namespaces[0], ""
    if not namespaces:
        return fallback, ""
    return fallback, (f"the input spans namespaces {', '.join(namespaces)}: rendering for a sidecar in {fallback} "
                      "(choose with -n, or name a workload with --proxy)")
