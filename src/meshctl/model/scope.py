"""What one proxy can see: the Sidecar resource's egress hosts, exportTo, and service dedup.

Istio computes a SidecarScope per Sidecar resource (and a default one per namespace). Only the
services and VirtualServices it imports become clusters, listeners and routes, which is how a
Sidecar resource shrinks a proxy's config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshctl import protocols
from meshctl.blocks import Blocks
from meshctl.config.kinds.networking.destination_rule import ConnectionPoolSettings
from meshctl.config.kinds.networking.fields import Destination
from meshctl.config.kinds.networking.sidecar import IstioEgressListener, IstioIngressListener, Sidecar
from meshctl.config.resource import Resource
from meshctl.hostnames import intersects, matches
from meshctl.model.gatewayapi import applies_in
from meshctl.model.istio import MESH_GATEWAY, VirtualServiceView, order_key
from meshctl.model.selectors import selects, visible
from meshctl.model.service import PASSTHROUGH, Service

__all__ = [
    "DEFAULT_HOSTS",
    "EgressScope",
    "HostImport",
    "Imports",
    "SidecarScope",
    "build_scope",
    "import_order",
    "matches_source_labels",
    "parse_hosts",
    "select_sidecar",
    "streams_of",
]

DEFAULT_HOSTS = (("*", "*"),)


@dataclass(frozen=True, slots=True)
class HostImport:
    """One egress host entry `ns/dns` (`~` prefix: exclusion, Istio 1.31+)."""

    namespace: str
    dns: str
    exclude: bool = False

    def covers(self, namespace: str, host: str) -> bool:
        return (self.namespace in ("*", namespace)) and matches(self.dns, host)

    def overlaps(self, namespace: str, host: str) -> bool:
        """Whether a VirtualService host of `namespace` shares a name with this entry: Istio
        imports `*.cluster.local` for `*/reviews.default.svc.cluster.local` and the other way
        round (hostClassification.VSMatches)."""
        return (self.namespace in ("*", namespace)) and intersects(self.dns, host)


@dataclass(frozen=True, slots=True, eq=False)
class EgressScope:
    """One Sidecar egress listener with the services and VirtualServices it imports."""

    port: int | None
    protocol: str
    port_name: str
    bind: str
    capture_mode: str
    services: tuple[Service, ...]
    virtual_services: Blocks[VirtualServiceView]
    """In the order `import_order` gives, held in blocks: an edit in place replaces one
    without copying the ten thousand others (model.changes)."""
    imports: tuple[HostImport, ...] = ()
    streams: Streams = ()
    """The revisions and hosts of the VirtualServices imported that route TCP or TLS: all that
    outbound listeners read of VirtualServices (see generate.tcproutes)."""

    @property
    def catch_all(self) -> bool:
        return self.port is None


@dataclass(frozen=True, slots=True, eq=False)
class SidecarScope:
    """`sidecar` is the Sidecar resource governing the proxies (None: the mesh defaults); its
    ingress listeners and inbound connection pool shape their inbound side."""

    namespace: str
    sidecar: Resource | None
    egress: tuple[EgressScope, ...]
    outbound_mode: str
    ingress: tuple[IstioIngressListener, ...] = ()
    inbound_connection_pool: ConnectionPoolSettings | None = None
    uses_source_labels: bool = False
    has_headless: bool = False
    egress_proxy: Destination | None = None
    """The Sidecar's `outboundTrafficPolicy.egressProxy` (ALLOW_ANY only): where traffic to no
    known service goes instead of straight out."""

    @property
    def services(self) -> list[Service]:
        """Every imported service once, in registry order."""
        seen: dict[int, Service] = {}
        for listener in self.egress:
            for service in listener.services:
                seen.setdefault(id(service), service)
        return list(seen.values())


def streams_of(virtual_services: Sequence[VirtualServiceView]) -> Streams:
    """See EgressScope.streams."""
    return tuple((vs.resource.revision, vs.hosts) for vs in virtual_services if vs.spec.tcp or vs.spec.tls)


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


def _imports_virtual_service(hosts: tuple[HostImport, ...], vs: VirtualServiceView) -> bool:
    for host in vs.hosts:
        if any(h.exclude and h.covers(vs.namespace, host) for h in hosts):
            continue
        if any(not h.exclude and h.overlaps(vs.namespace, host) for h in hosts):
            return True
    return False


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
        selector = _selector(sidecar)
        if selector and selects(selector, labels):
            return sidecar
    for sidecar in local:
        if not _selector(sidecar):
            return sidecar
    for sidecar in sorted((s for s in sidecars if s.namespace == root_namespace), key=order_key):
        if not _selector(sidecar):
            return sidecar
    return None


def _selector(sidecar: Resource) -> Mapping[str, str]:
    selector = sidecar.view_as(Sidecar).workload_selector
    return selector.labels if selector is not None else {}


_IMPORT_EVERYTHING = (IstioEgressListener(hosts=("*/*",)),)


Streams = tuple[tuple[str, tuple[str, ...]], ...]
Imports = tuple[tuple[Service, ...], Blocks[VirtualServiceView], bool, bool, Streams]


def import_order(namespace: str) -> Callable[[VirtualServiceView], tuple[Any, ...]]:
    """The order of the VirtualServices a listener of `namespace` imports: routes of the
    Gateway API in that namespace first (GAMMA consumer routes win), then Istio's precedence
    (oldest first); no two VirtualServices have the same place."""
    return lambda vs: (not (vs.gateway_semantics and vs.namespace == namespace), order_key(vs.resource))


def build_scope(namespace: str, sidecar: Resource | None, services: Sequence[Service],
                virtual_services: Sequence[VirtualServiceView], default_outbound: str,
                imports: dict[tuple[str, tuple[HostImport, ...]], Imports] | None = None,
                service_imports: dict[tuple[str, tuple[HostImport, ...]], tuple[Service, ...]] | None = None,
                carried: Callable[[tuple[str, tuple[HostImport, ...]]], Imports | None] | None = None) -> SidecarScope:
    """The scope of proxies in `namespace` governed by `sidecar` (None: import everything).

    `imports` remembers, per namespace and egress hosts, what a listener imports: Sidecars
    that differ only in what does not decide imports (workload selector, bind address) then
    share the very same tuples, which lets generation share what it builds from them.
    `service_imports` remembers the services part alone, for as long as the services are the
    same (a snapshot passes on its own to the next when the registry is unchanged): a routing
    edit then looks at the VirtualServices again, not at every service. `carried` gives the
    previous snapshot's imports when VirtualServices were only edited in place
    (model.changes): then not even those are looked at again.
    """
    spec = sidecar.view_as(Sidecar) if sidecar is not None else Sidecar()
    owner_namespace = sidecar.namespace if sidecar is not None else namespace
    listeners = spec.egress or _IMPORT_EVERYTHING
    memo = imports if imports is not None else {}
    service_memo = service_imports if service_imports is not None else {}
    exported: list[Service] | None = None  # computed on the first miss
    vs_visible: list[VirtualServiceView] | None = None

    def imported_by(hosts: tuple[HostImport, ...]) -> Imports:
        nonlocal exported, vs_visible
        found = memo.get((namespace, hosts))
        if found is None and carried is not None:
            found = carried((namespace, hosts))
            if found is not None:
                memo[(namespace, hosts)] = found
        if found is None:
            chosen = service_memo.get((namespace, hosts))
            if chosen is None:
                if exported is None:
                    exported = [s for s in services if s.visible_to(namespace)]
                chosen = tuple(_dedup_by_host([s for s in exported if _imports(hosts, s.namespace, s.hostname)], namespace))
                service_memo[(namespace, hosts)] = chosen
            if vs_visible is None:
                vs_visible = [vs for vs in virtual_services if MESH_GATEWAY in vs.gateways
                              and visible(vs.export_to, namespace) and applies_in(vs, namespace)]
                vs_visible.sort(key=import_order(namespace))
            vss = Blocks(vs for vs in vs_visible if _imports_virtual_service(hosts, vs))
            found = memo[(namespace, hosts)] = (chosen, vss, any(matches_source_labels(vs) for vs in vss),
                                                any(s.resolution == PASSTHROUGH for s in chosen), streams_of(vss))
        return found

    egress = []
    source_labels = headless = False
    for listener in listeners:
        hosts = parse_hosts(listener.hosts, owner_namespace)
        imported, vss, by_labels, has_headless, streams = imported_by(hosts)
        source_labels = source_labels or by_labels
        headless = headless or has_headless
        port = listener.port
        egress.append(
            EgressScope(
                port=port.number if port is not None else None,
                protocol=protocols.parse(port.protocol if port is not None else ""),
                port_name=port.name if port is not None else "",
                bind=listener.bind,
                capture_mode=listener.capture_mode or "DEFAULT",
                services=imported,
                virtual_services=vss,
                imports=hosts,
                streams=streams,
            )
        )
    policy = spec.outbound_traffic_policy
    mode = (policy.mode if policy is not None else "") or default_outbound
    return SidecarScope(namespace, sidecar, tuple(egress), mode, spec.ingress, spec.inbound_connection_pool,
                        uses_source_labels=source_labels, has_headless=headless,
                        egress_proxy=policy.egress_proxy if policy is not None and mode == "ALLOW_ANY" else None)


def matches_source_labels(vs: VirtualServiceView) -> bool:
    """Whether a VirtualService matches on the client's labels (then labels shape the routes)."""
    spec = vs.spec
    return (any(match.source_labels for rule in spec.http for match in rule.match)
            or any(match.source_labels for rule in spec.tcp for match in rule.match)
            or any(match.source_labels for rule in spec.tls for match in rule.match))
