"""What one proxy can see: the Sidecar resource's egress hosts, exportTo, and service dedup.

Istio computes a SidecarScope per Sidecar resource (and a default one per namespace). Only the
services and VirtualServices it imports become clusters, listeners and routes, which is how a
Sidecar resource shrinks a proxy's config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshctl import protocols
from meshctl.config.resource import Resource
from meshctl.hostnames import matches
from meshctl.model.istio import MESH_GATEWAY, VirtualServiceView, order_key
from meshctl.model.selectors import selects, visible
from meshctl.model.service import PASSTHROUGH, Service

DEFAULT_HOSTS = (("*", "*"),)


@dataclass(frozen=True, slots=True)
class HostImport:
    """One egress host entry `ns/dns` (`~` prefix: exclusion, Istio 1.31+)."""

    namespace: str
    dns: str
    exclude: bool = False

    def covers(self, namespace: str, host: str) -> bool:
        return (self.namespace in ("*", namespace)) and matches(self.dns, host)


@dataclass(frozen=True, slots=True, eq=False)
class EgressScope:
    """One Sidecar egress listener with the services and VirtualServices it imports."""

    port: int | None
    protocol: str
    port_name: str
    bind: str
    capture_mode: str
    services: tuple[Service, ...]
    virtual_services: tuple[VirtualServiceView, ...]

    @property
    def catch_all(self) -> bool:
        return self.port is None


@dataclass(frozen=True, slots=True, eq=False)
class SidecarScope:
    namespace: str
    sidecar: Resource | None
    egress: tuple[EgressScope, ...]
    outbound_mode: str
    ingress: tuple[Mapping[str, Any], ...]
    uses_source_labels: bool = False
    has_headless: bool = False

    @property
    def services(self) -> list[Service]:
        """Every imported service once, in registry order."""
        seen: dict[int, Service] = {}
        for listener in self.egress:
            for service in listener.services:
                seen.setdefault(id(service), service)
        return list(seen.values())


def parse_hosts(entries: Sequence[str], sidecar_namespace: str) -> tuple[HostImport, ...]:
    out = []
    for entry in entries:
        exclude = entry.startswith("~")
        body = entry[1:] if exclude else entry
        namespace, _, dns = body.partition("/")
        if not dns:
            namespace, dns = "*", namespace
        if namespace == ".":
            namespace = sidecar_namespace
        if exclude and namespace == "":
            namespace = "*"
        out.append(HostImport(namespace, dns, exclude))
    return tuple(out)


def _imports(hosts: tuple[HostImport, ...], namespace: str, host: str) -> bool:
    if any(h.exclude and h.covers(namespace, host) for h in hosts):
        return False
    return any(not h.exclude and h.covers(namespace, host) for h in hosts)


def _dedup_by_host(services: Sequence[Service], proxy_namespace: str) -> list[Service]:
    """One service per hostname: the proxy's own namespace wins, then Kubernetes over entries."""
    chosen: dict[str, Service] = {}
    for service in services:
        current = chosen.get(service.hostname)
        if current is None or _prefer(service, current, proxy_namespace):
            chosen[service.hostname] = service
    keep = {id(s) for s in chosen.values()}
    return [s for s in services if id(s) in keep]


def _prefer(candidate: Service, current: Service, namespace: str) -> bool:
    if (candidate.namespace == namespace) != (current.namespace == namespace):
        return candidate.namespace == namespace
    return candidate.from_kubernetes and not current.from_kubernetes


def select_sidecar(sidecars: Sequence[Resource], namespace: str, labels: Mapping[str, str],
                   root_namespace: str) -> Resource | None:
    """Workload-selector Sidecar in the namespace, else the namespace default, else the root's."""
    local = sorted((s for s in sidecars if s.namespace == namespace), key=order_key)
    for sidecar in local:
        selector = (sidecar.spec.get("workloadSelector") or {}).get("labels") or {}
        if selector and selects(selector, labels):
            return sidecar
    for sidecar in local:
        if not (sidecar.spec.get("workloadSelector") or {}).get("labels"):
            return sidecar
    for sidecar in sorted((s for s in sidecars if s.namespace == root_namespace), key=order_key):
        if not (sidecar.spec.get("workloadSelector") or {}).get("labels"):
            return sidecar
    return None


Imports = tuple[tuple[Service, ...], tuple[VirtualServiceView, ...], bool, bool]


def build_scope(namespace: str, sidecar: Resource | None, services: Sequence[Service],
                virtual_services: Sequence[VirtualServiceView], default_outbound: str,
                imports: dict[tuple[str, tuple[HostImport, ...]], Imports] | None = None) -> SidecarScope:
    """The scope of proxies in `namespace` governed by `sidecar` (None: import everything).

    `imports` remembers, per namespace and egress hosts, what a listener imports: Sidecars
    that differ only in what does not decide imports (workload selector, bind address) then
    share the very same tuples, which lets generation share what it builds from them.
    """
    spec = sidecar.spec if sidecar is not None else {}
    owner_namespace = sidecar.namespace if sidecar is not None else namespace
    listeners = spec.get("egress") or [{"hosts": ["*/*"]}]
    memo = imports if imports is not None else {}
    visible_here: tuple[list[Service], list[VirtualServiceView]] | None = None  # computed on the first miss

    def imported_by(hosts: tuple[HostImport, ...]) -> Imports:
        nonlocal visible_here
        found = memo.get((namespace, hosts))
        if found is None:
            if visible_here is None:
                visible_here = ([s for s in services if s.visible_to(namespace)],
                                [vs for vs in virtual_services if MESH_GATEWAY in vs.gateways and visible(vs.export_to, namespace)])
            exported, vs_visible = visible_here
            chosen = tuple(_dedup_by_host([s for s in exported if _imports(hosts, s.namespace, s.hostname)], namespace))
            vss = tuple(vs for vs in vs_visible if any(_imports(hosts, vs.namespace, host) for host in vs.hosts))
            found = memo[(namespace, hosts)] = (chosen, vss, any(_matches_source_labels(vs) for vs in vss),
                                                any(s.resolution == PASSTHROUGH for s in chosen))
        return found

    egress = []
    source_labels = headless = False
    for listener in listeners:
        imported, vss, by_labels, has_headless = imported_by(parse_hosts(listener.get("hosts") or [], owner_namespace))
        source_labels = source_labels or by_labels
        headless = headless or has_headless
        port = listener.get("port") or {}
        egress.append(
            EgressScope(
                port=port.get("number"),
                protocol=protocols.parse(port.get("protocol", "")),
                port_name=port.get("name", ""),
                bind=listener.get("bind", ""),
                capture_mode=listener.get("captureMode", "DEFAULT"),
                services=imported,
                virtual_services=vss,
            )
        )
    mode = (spec.get("outboundTrafficPolicy") or {}).get("mode") or default_outbound
    return SidecarScope(namespace, sidecar, tuple(egress), mode, tuple(spec.get("ingress") or ()),
                        uses_source_labels=source_labels, has_headless=headless)


def _matches_source_labels(vs: VirtualServiceView) -> bool:
    """Whether a VirtualService matches on the client's labels (then labels shape the routes)."""
    for section in ("http", "tcp", "tls"):
        for rule in vs.spec.get(section) or []:
            if any(match.get("sourceLabels") for match in rule.get("match") or []):
                return True
    return False
