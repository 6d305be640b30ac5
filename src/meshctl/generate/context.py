"""What every generator needs for one proxy, computed once per (snapshot, proxy)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from meshctl import protocols
from meshctl.generate import names
from meshctl.config.kinds.networking.sidecar import IstioIngressListener
from meshctl.generate.cache import GenerationCache
from meshctl.generate.filters import tracing_settings
from meshctl.generate.headers import HeaderPolicy, header_policy
from meshctl.generate.routeshapes import RouteShapes
from meshctl.generate.templates import ShapeTemplates
from meshctl.memokeys import Same
from meshctl.model.istio import MESH_GATEWAY, DestinationRuleView, gateway_name
from meshctl.config.kinds.mesh import Tracing
from meshctl.model.meshconfig import MeshConfig
from meshctl.model.proxy import Proxy
from meshctl.model.scope import SidecarScope
from meshctl.model.selectors import selects
from meshctl.model.service import Service, ServicePort, ServiceTarget
from meshctl.model.snapshot import ENDPOINT_KINDS, MeshSnapshot

__all__ = ["InboundPort", "MESH_ONLY", "NOT_INBOUND_KINDS", "ProxyContext", "StaticMatch"]


@dataclass(slots=True)
class InboundPort:
    """One port the proxy's workload serves: the target port and the services that expose it,
    or a Sidecar ingress listener's port with its bind address, capture mode and endpoint."""

    target_port: int
    protocol: str
    services: list[tuple[Service, ServicePort]]
    bind: str = ""
    default_endpoint: str = ""
    capture_mode: str = ""


T = TypeVar("T")
M = TypeVar("M", bound=Message)
MESH_ONLY = frozenset({MESH_GATEWAY})

NOT_INBOUND_KINDS = ("VirtualService", "DestinationRule", "Pod", "Deployment", "WorkloadEntry", "Endpoints",
                     "EndpointSlice")
"""Kinds a proxy's inbound side never reads, other than its own workload's object and the rules
of its own services (see inbound_key)."""

_INBOUND_KEY_UNREAD = tuple(kind for kind in NOT_INBOUND_KINDS if kind != "DestinationRule")
"""The kinds `inbound_key` reads nothing of (it reads the rules of the proxy's own services)."""


class StaticMatch(Protocol):
    """What HTTP, TLS and TCP route matches share: the conditions known before a request comes."""

    @property
    def port(self) -> int: ...
    @property
    def gateways(self) -> tuple[str, ...]: ...
    @property
    def source_labels(self) -> Mapping[str, str]: ...
    @property
    def source_namespace(self) -> str: ...


@dataclass(slots=True)
class ProxyContext:
    snapshot: MeshSnapshot
    proxy: Proxy
    scope: SidecarScope
    cache: GenerationCache | None = None
    warnings: list[str] = field(default_factory=list)
    route_names: dict[str, None] = field(default_factory=dict)
    templates: ShapeTemplates = field(default_factory=ShapeTemplates)
    """Byte templates of this generation's resources by shape (generate.templates)."""
    route_shapes: RouteShapes = field(default_factory=RouteShapes)
    """This generation's sidecar routes by shape (generate.routeshapes)."""
    wire: dict[int, tuple[Message, bytes]] = field(default_factory=dict)
    """Messages parsed from bytes rendered for them (`parsed`), by identity, with those bytes:
    packing without a cache takes them instead of serializing each message again."""
    _inbound_key: tuple[Hashable, ...] | None = None
    _headers: HeaderPolicy | None = None

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, or its remembered result for the same inputs (see GenerationCache).

        Warnings raised while computing are remembered with the result and raised again on
        every reuse, so cached and fresh generations warn alike.
        """
        if self.cache is None:
            return compute()
        fresh = False

        def with_warnings() -> tuple[T, list[str]]:
            nonlocal fresh
            fresh = True
            before = len(self.warnings)
            value = compute()
            return value, self.warnings[before:]

        value, warnings = self.cache.get(key, with_warnings)
        if not fresh:
            self.warnings.extend(warnings)
        return value

    def memo_by(self, key_of: Callable[[], Hashable], compute: Callable[[], T]) -> T:
        """`memo` with a key built only when there is a cache to look it up in: a per-service
        key is a good part of a cold generation's cost, and a cold one has no use for it."""
        return compute() if self.cache is None else self.memo(key_of(), compute)

    def memo_list(self, key: Hashable, compute: Callable[[], list[T]]) -> list[T]:
        """`memo` of a list, which keeps its identity across changes that leave all its items
        the same objects (see `same_list`)."""
        return self.memo(key, lambda: self.same_list(compute()))

    def same_list(self, items: list[T]) -> list[T]:
        """See GenerationCache.same_list; `items` itself without a cache."""
        return items if self.cache is None else self.cache.same_list(items)

    def same_content(self, items: list[M]) -> list[M]:
        """See GenerationCache.same_content; `items` itself without a cache."""
        return items if self.cache is None else self.cache.same_content(items)

    def parsed(self, message_class: type[M], data: bytes) -> M:
        """`message_class.FromString(data)`, `data` being its deterministic serialization; kept
        with it (`wire`) when there is no cache (with one, a message outlives this generation
        and is packed once for all that share it)."""
        message = message_class.FromString(data)
        if self.cache is None:
            self.wire[id(message)] = (message, data)
        return message

    @property
    def mesh(self) -> MeshConfig:
        return self.snapshot.mesh

    @property
    def headers(self) -> HeaderPolicy:
        """The proxy's header knobs (its proxyHeaders, else the mesh's)."""
        if self._headers is None:
            self._headers = header_policy(self.proxy, self.snapshot.mesh)
        return self._headers

    @property
    def tracing(self) -> Tracing | None:
        """The proxy's tracing settings (its ProxyConfig's, else the mesh's), which every
        connection manager reads: keys of listeners hold them beside `headers`."""
        return tracing_settings(self.proxy, self.snapshot.mesh)

    def unbindable(self, port: int, direction: str) -> bool:
        """Whether a sidecar listener that binds `port` for real must be left out: an
        unprivileged pod (the node's UNPRIVILEGED_POD) cannot bind a port below 1024 (Istio's
        CanBindToPort; port 0 is a Unix socket's), and a warning says so."""
        if 0 < port < 1024 and self.proxy.flags.unprivileged:
            self.warnings.append(f"{direction} port {port} skipped: an unprivileged pod cannot bind ports below 1024")
            return True
        return False

    @property
    def fallthrough_cluster(self) -> str:
        """Where traffic to no known service goes (the virtualOutbound catch-all, a listener's
        PassthroughFilterChain, the allow_any route): nowhere under REGISTRY_ONLY, else the
        Sidecar's egressProxy (its cluster as a route destination names it; the port its own),
        else straight out."""
        if self.scope.outbound_mode == "REGISTRY_ONLY":
            return names.BLACKHOLE
        proxy = self.scope.egress_proxy
        if proxy is not None:
            return names.outbound_cluster(proxy.port.number if proxy.port else 0, proxy.host, proxy.subset)
        return names.PASSTHROUGH

    def view_key(self) -> tuple[Hashable, ...]:
        """What makes two proxies see the mesh alike (the same outbound clusters, endpoints and
        routes): snapshot, namespace, Sidecar, interception, flavor, the labels only when a
        VirtualService or DestinationRule selects by them, whether virtual hosts count attempts
        and whether clusters keep HTTP/1 header case (a pod's proxyHeaders may say otherwise
        than the mesh's)."""
        snapshot, proxy, scope = self.snapshot, self.proxy, self.scope
        labels: tuple[tuple[str, str], ...] = ()
        if snapshot.rule_index.has_selectors or scope.uses_source_labels:
            labels = tuple(sorted(proxy.labels.items()))
        own_ip = proxy.ip if scope.has_headless else ""
        sidecar = scope.sidecar.revision if scope.sidecar is not None else ""
        headers = self.headers
        return (snapshot.version, proxy.namespace, sidecar, proxy.interception, proxy.istio_extensions, labels, own_ip,
                proxy.type, headers.attempt_count, headers.preserve_case)

    def routes_key(self) -> tuple[Hashable, ...]:
        """What route configurations add to or take from the view: instead of the Sidecar, what
        its egress listeners import (the same tuples for Sidecars importing the same hosts, see
        build_scope) and the outbound policy, so proxies whose Sidecars differ only in selector
        or bind address share their routes, as Istio's route cache does; and the DNS domain,
        which decides the short names among a virtual host's domains. Routes name services and
        never their endpoints, so the version of every kind but Endpoints and EndpointSlices
        stands for the snapshot's: in a cluster, an endpoint change leaves every route as it was."""
        imported = tuple((Same(e.services), Same(e.virtual_services)) for e in self.scope.egress)
        return (self.snapshot.versions_except(*ENDPOINT_KINDS), imported, *self.routes_view())

    def routes_view(self) -> tuple[Hashable, ...]:
        """What route configurations read of the proxy and its Sidecar, the snapshot apart:
        `routes_key` with the egress listeners named by what they import (their hosts) rather
        than by the very services and VirtualServices imported, which an edit replaces."""
        _snapshot_version, namespace, _sidecar, *rest = self.view_key()
        egress = tuple((e.port, e.protocol, e.imports) for e in self.scope.egress)
        return (namespace, egress, self.fallthrough_cluster, *rest, self.proxy.dns_domain)

    def services_key(self) -> tuple[Hashable, ...]:
        """What outbound clusters and endpoints add to the view: instead of the Sidecar, the
        services its egress listeners import (the same tuples for Sidecars importing the same
        hosts), the only part of a Sidecar they read; clients whose Sidecars differ only in
        selector or bind address then share them, and an endpoint change reassembles them once."""
        _snapshot_version, namespace, _sidecar, *rest = self.view_key()
        return (namespace, tuple(Same(e.services) for e in self.scope.egress), *rest)

    def inbound_key(self) -> tuple[Hashable, ...]:
        """What the proxy's own side (inbound listeners and clusters) is made of: the proxy as its
        node describes it, its workload's object, its Sidecar, the DestinationRules of its own
        services (an inbound cluster takes its service's connection pool), and every other kind
        of config except VirtualServices and other workloads, which never reach the inbound
        side. Keyed by content, so an endpoint, route or rule change elsewhere keeps every
        proxy's inbound side (and its bytes). Made once per generation of the proxy, for its
        inbound clusters and listeners alike."""
        if self._inbound_key is None:
            if self.cache is None:
                self._inbound_key = self._make_inbound_key()
            else:
                # Kept with the proxy object (its node and workload) and every kind the key
                # may read: an endpoint or routing change finds it without making it again,
                # which was most of an unchanged proxy's cost when a thousand share a view.
                snapshot = self.snapshot
                self._inbound_key = self.cache.get(
                    ("inbound-key", Same(self.proxy), snapshot.versions_except(*_INBOUND_KEY_UNREAD), snapshot.mesh_key),
                    self._make_inbound_key)
        return self._inbound_key

    def _make_inbound_key(self) -> tuple[Hashable, ...]:
        proxy, workload = self.proxy, self.proxy.workload
        own = (workload.source.revision, workload.name, workload.ip, workload.kind) if workload is not None else None
        sidecar = self.scope.sidecar.revision if self.scope.sidecar is not None else ""
        return ("inbound", proxy.id, proxy.namespace, proxy.ip, proxy.type, proxy.dns_domain,
                tuple(sorted(proxy.labels.items())), proxy.interception, proxy.istio_version, proxy.cluster_id,
                proxy.istio_extensions, repr(proxy.metadata), self.headers, self.tracing, own, sidecar,
                self._own_rules(),
                self.snapshot.versions_except(*NOT_INBOUND_KINDS), self.snapshot.mesh_key)

    def _own_rules(self) -> tuple[tuple[str, ...] | None, ...]:
        """Revisions of the DestinationRules this proxy would apply to its workload's services
        (the Kubernetes Services selecting it and the ServiceEntries with an endpoint at its
        address: its service targets)."""
        workload = self.proxy.workload
        if workload is None:
            return ()
        labels = tuple(sorted(workload.labels.items()))
        key = ("own-services", workload.namespace, labels, workload.ip,
               self.snapshot.versions_of("Service", "ServiceEntry"))
        services = self.memo(key, lambda: list({id(t.service): t.service for t in self._service_targets()}.values()))
        rules = (self.rule_for(service) for service in services)
        return tuple(tuple(r.revision for r in rule.resources) if rule is not None else None for rule in rules)

    def workload_key(self) -> tuple[Hashable, ...]:
        """What outbound listeners add to the view: the workload named in tracing tags."""
        workload = self.proxy.workload
        if workload is None:
            return ("", "", self.proxy.cluster_id)
        return (workload.canonical_name, workload.canonical_revision, self.proxy.cluster_id)

    def applies(self, match: StaticMatch, port: int, gateways: frozenset[str] = MESH_ONLY, namespace: str = "") -> bool:
        """Whether a route match can select this proxy's traffic on `port`: its port, and its
        source labels and namespace unless it names gateways, which must then include one of
        `gateways` (a sidecar is `mesh`; a gateway is `ns/name`; names are resolved in the
        VirtualService's `namespace`)."""
        if match.port and match.port != port:
            return False
        if match.gateways:
            return any(gateway_name(name, namespace) in gateways for name in match.gateways)
        if not selects(match.source_labels, self.proxy.labels):
            return False
        return not match.source_namespace or match.source_namespace == self.proxy.namespace

    def rule_for(self, service: Service) -> DestinationRuleView | None:
        return self.snapshot.destination_rule(self.proxy, service.hostname, service.namespace)

    def inbound_ports(self) -> list[InboundPort]:
        """The workload's ports, from Sidecar ingress if given, else from its own services
        (Kubernetes Services selecting it, ServiceEntries with an endpoint at its address).

        The first service claiming a port decides its protocol (Istio's rule).
        """
        if self.scope.ingress:
            return [self._ingress_port(entry) for entry in self.scope.ingress]
        ports: dict[int, InboundPort] = {}
        for target in self._service_targets():
            entry = ports.get(target.target_port)
            if entry is None:
                ports[target.target_port] = InboundPort(target.target_port, target.port.protocol, [])
                entry = ports[target.target_port]
            entry.services.append((target.service, target.port))
        return [ports[number] for number in sorted(ports)]

    def _service_targets(self) -> list[ServiceTarget]:
        workload = self.proxy.workload
        return self.snapshot.registry.service_targets(workload) if workload is not None else []

    def _ingress_port(self, entry: IstioIngressListener) -> InboundPort:
        number = entry.port.number or 0
        return InboundPort(
            target_port=number,
            protocol=protocols.parse(entry.port.protocol),
            services=[(t.service, t.port) for t in self._service_targets() if t.target_port == number],
            bind=entry.bind,
            default_endpoint=entry.default_endpoint,
            capture_mode=entry.capture_mode,
        )
