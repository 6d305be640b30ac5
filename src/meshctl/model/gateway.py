"""Which Gateways a gateway proxy (node type `router`) serves, merged the way istiod merges them.

Istio builds one logical gateway per router proxy out of every Gateway resource that selects it
(`pilot/pkg/model/gateway.go`, `mergeGateways`): server hosts normalised, server ports translated
to the ports the gateway pod really listens on (the gateway Service's `targetPort`), servers
that share a port merged or refused by Istio's conflict rules, and each HTTP server given the
route configuration name its filter chain asks for over RDS. The listeners and routes are built
from that merge (meshctl.generate.gateway); it lives here, in the model, because both need it,
and so does the question "which VirtualServices does this gateway bind".

Refusals only warn, as istiod only logs them (and counts `pilot_total_rejected_configs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from meshctl import protocols
from meshctl.config.kinds.networking.gateway import Gateway, Server, ServerTLSSettings
from meshctl.config.resource import Resource
from meshctl.model.istio import VirtualServiceView, order_key
from meshctl.model.selectors import selects
from meshctl.model.service import Service, ServicePort, Workload

__all__ = [
    "AUTO_PASSTHROUGH",
    "DISABLE_PORT_TRANSLATION_LABEL",
    "GATEWAY_SERVICE_ANNOTATION",
    "GatewayServer",
    "ISTIO_MUTUAL",
    "MUTUAL",
    "MergedGateway",
    "MergedServers",
    "OPTIONAL_MUTUAL",
    "PARENT_NAMESPACE_ANNOTATION",
    "PASSTHROUGH",
    "SERVICE_ACCOUNT_ANNOTATION",
    "SIMPLE",
    "SelectedGateway",
    "ServerPort",
    "ServiceTarget",
    "TLSServerInfo",
    "claim_hosts",
    "hosts_for_namespace",
    "merge_gateways",
    "normalized_hosts",
    "resolve_ports",
    "route_name",
    "select_gateways",
    "service_targets",
    "virtual_services_for_gateway",
]

# Annotations Istio puts on the Gateways it makes of Gateway API objects (pkg/config/constants).
GATEWAY_SERVICE_ANNOTATION = "internal.istio.io/gateway-service"
PARENT_NAMESPACE_ANNOTATION = "internal.istio.io/parent-namespace"
SERVICE_ACCOUNT_ANNOTATION = "internal.istio.io/service-account-name"
DISABLE_PORT_TRANSLATION_LABEL = "experimental.istio.io/disable-gateway-port-translation"

PASSTHROUGH = "PASSTHROUGH"
AUTO_PASSTHROUGH = "AUTO_PASSTHROUGH"
ISTIO_MUTUAL = "ISTIO_MUTUAL"
SIMPLE = "SIMPLE"
MUTUAL = "MUTUAL"
OPTIONAL_MUTUAL = "OPTIONAL_MUTUAL"


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    """One port of a Service that sends traffic to the gateway's pod, and the pod's port for it."""

    service: Service
    port: ServicePort
    target_port: int


@dataclass(frozen=True, slots=True, eq=False)
class GatewayServer:
    """One server of one Gateway, its hosts normalised (`./h` → `ns/h`, `*/h` → `h`, `*/*` →
    only `*`). Compared by identity, as Istio keys its merge maps by server pointer."""

    server: Server
    hosts: tuple[str, ...]
    gateway: str
    resource: Resource

    @property
    def number(self) -> int:
        return self.server.port.number

    @property
    def protocol(self) -> str:
        return protocols.parse(self.server.port.protocol)

    @property
    def port_name(self) -> str:
        return self.server.port.name

    @property
    def bind(self) -> str:
        return self.server.bind

    @property
    def tls(self) -> ServerTLSSettings | None:
        return self.server.tls

    @property
    def tls_mode(self) -> str:
        """The TLS mode, PASSTHROUGH when `tls` is given without one (the API's default)."""
        tls = self.server.tls
        return (tls.mode or PASSTHROUGH) if tls is not None else ""

    @property
    def passthrough(self) -> bool:
        return self.tls_mode in (PASSTHROUGH, AUTO_PASSTHROUGH)

    @property
    def is_http(self) -> bool:
        """HTTP-class, or HTTPS terminated here: served by an HTTP connection manager."""
        if self.protocol in protocols.HTTP_FAMILY:
            return True
        return self.protocol == protocols.HTTPS and self.tls is not None and not self.passthrough

    @property
    def is_tls(self) -> bool:
        """Not HTTP-class, with TLS settings (terminated or passed through by SNI)."""
        return self.tls is not None and self.protocol not in protocols.HTTP_FAMILY

    @property
    def https_redirect(self) -> bool:
        return self.tls is not None and self.tls.https_redirect

    @property
    def sni_hosts(self) -> tuple[str, ...]:
        """The hosts without their namespace, deduplicated and sorted: a TLS server's SNI names."""
        return tuple(sorted({host.partition("/")[2] if "/" in host else host for host in self.hosts}))


@dataclass(frozen=True, slots=True, eq=False)
class SelectedGateway:
    """A Gateway that applies to the proxy, with the service ports its server ports resolve
    against; `legacy` is selection by labels (then an unmatched port is used as it is)."""

    resource: Resource
    spec: Gateway
    targets: tuple[ServiceTarget, ...]
    legacy: bool

    @property
    def name(self) -> str:
        return f"{self.resource.namespace}/{self.resource.name}"


@dataclass(frozen=True, slots=True)
class ServerPort:
    """A listener of the gateway: resolved port, the protocol of its first server, bind."""

    number: int
    protocol: str
    bind: str


@dataclass(slots=True)
class MergedServers:
    servers: list[GatewayServer] = field(default_factory=list)
    route_name: str = ""


@dataclass(frozen=True, slots=True)
class TLSServerInfo:
    route_name: str
    sni_hosts: tuple[str, ...]


@dataclass(slots=True)
class MergedGateway:
    """Every selected Gateway's servers as one gateway (Istio's MergedGateway)."""

    server_ports: list[ServerPort] = field(default_factory=list)
    servers: dict[ServerPort, MergedServers] = field(default_factory=dict)
    servers_by_route: dict[str, list[GatewayServer]] = field(default_factory=dict)
    tls_info: dict[GatewayServer, TLSServerInfo] = field(default_factory=dict)
    auto_passthrough_hosts: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_auto_passthrough(self) -> bool:
        return bool(self.auto_passthrough_hosts)


def service_targets(services: Sequence[Service], endpoints: Mapping[Service, Iterable[tuple[ServicePort, str, int]]],
                    workload: Workload | None, ip: str) -> list[ServiceTarget]:
    """The service ports that reach the gateway pod: Kubernetes Services selecting it (target
    ports resolved against its named container ports), and service ports with an endpoint at
    its address (ServiceEntries), in registry order."""
    out: list[ServiceTarget] = []
    for service in services:
        if service.from_kubernetes:
            if workload is None or service.namespace != workload.namespace or not service.selector:
                continue
            if not selects(service.selector, workload.labels):
                continue
            for port in service.ports:
                target = port.target_on(workload.ports)
                if target is not None:
                    out.append(ServiceTarget(service, port, target))
            continue
        for port, address, target in endpoints.get(service, ()):
            if address == ip:
                out.append(ServiceTarget(service, port, target))
    return out


def select_gateways(gateways: Iterable[Resource], labels: Mapping[str, str],
                    targets: Sequence[ServiceTarget]) -> list[SelectedGateway]:
    """The Gateways that apply to a gateway proxy, oldest first (Istio's order).

    A Gateway made of a Gateway API Gateway names its Services (`internal.istio.io/gateway-service`)
    and applies to the pods behind one of them in its namespace, its ports resolving against those
    Services only; any other Gateway applies when its selector picks the pod's labels (no selector:
    every gateway pod), its ports resolving against all of the pod's Services. Selection is
    mesh-wide, as with Istio's default (PILOT_SCOPE_GATEWAY_TO_NAMESPACE off).
    """
    out: list[SelectedGateway] = []
    for resource in sorted(gateways, key=order_key):
        spec = resource.view_as(Gateway)
        named = resource.annotations.get(GATEWAY_SERVICE_ANNOTATION)
        if named is not None:
            home = resource.annotations.get(PARENT_NAMESPACE_ANNOTATION) or resource.namespace
            hosts = {host.strip() for host in named.split(",") if host.strip()}
            matching = tuple(t for t in targets if t.service.hostname in hosts and t.service.namespace == home)
            if matching:
                out.append(SelectedGateway(resource, spec, matching, legacy=False))
            continue
        if selects(spec.selector, labels):
            out.append(SelectedGateway(resource, spec, tuple(targets), legacy=True))
    return out


def normalized_hosts(hosts: Sequence[str], namespace: str) -> tuple[str, ...]:
    """Istio's sanitizeServerHostNamespace: `./h` → `ns/h`, `*/h` → `h`, `*/*` → just `*`."""
    out: list[str] = []
    for host in hosts:
        ns, slash, name = host.partition("/")
        if not slash:
            out.append(host)
        elif ns == ".":
            out.append(f"{namespace}/{name}")
        elif ns == "*":
            if name == "*":
                return ("*",)
            out.append(name)
        else:
            out.append(host)
    return tuple(out)


def resolve_ports(number: int, targets: Sequence[ServiceTarget], legacy: bool) -> list[int]:
    """The ports a server port listens on: the target port of every Service port equal to it
    (selection by Service), or of the first one (selection by labels, which falls back to the
    port itself and skips Services opting out of translation)."""
    found: list[int] = []
    for target in targets:
        if legacy and DISABLE_PORT_TRANSLATION_LABEL in target.service.source.labels:
            continue
        if target.port.port == number:
            if legacy:
                return [target.target_port]
            if target.target_port not in found:
                found.append(target.target_port)
    if not found and legacy:
        return [number]
    return found


def route_name(server: GatewayServer, resolved: int) -> str:
    """`http.<resolved port>` for HTTP servers, `https.<port>.<port name>.<gateway>.<ns>` for
    terminated HTTPS ones (each with `.<bind>` when bound), "" for the rest (no RDS)."""
    bind = f".{server.bind}" if server.bind else ""
    if server.protocol in protocols.HTTP_FAMILY:
        return f"http.{resolved}{bind}"
    if server.protocol == protocols.HTTPS and not server.passthrough:
        resource = server.resource
        return f"https.{server.number}.{server.port_name}.{resource.name}.{resource.namespace}{bind}"
    return ""


def _can_merge(current: str, incoming: str) -> bool:
    return (current in protocols.HTTP_FAMILY or current == incoming) and incoming in protocols.HTTP_FAMILY


def merge_gateways(selected: Sequence[SelectedGateway]) -> MergedGateway:
    """Istio's mergeGateways: servers in Gateway order, each on every port it resolves to.

    On a port, plain-text HTTP-class servers share one listener and route configuration; TLS
    servers are told apart by SNI, so a host on a port may be claimed by one TLS server only
    (per bind); HTTPS servers need a route configuration name of their own. What cannot be
    merged is left out, with a warning.
    """
    merged = MergedGateway()
    ports_seen: set[int] = set()
    plain_text: dict[int, ServerPort] = {}
    non_plain_binds: dict[int, set[str]] = {}
    tls_hosts: dict[int, dict[str, str]] = {}
    for gateway in selected:
        names: set[str] = set()
        for raw in gateway.spec.servers:
            if raw.name:
                if raw.name in names:
                    merged.warnings.append(f"Gateway {gateway.name}: server name {raw.name!r} is not unique; "
                                           "its stat prefix is shared")
                names.add(raw.name)
            server = GatewayServer(raw, normalized_hosts(raw.hosts, gateway.resource.namespace), gateway.name,
                                   gateway.resource)
            for resolved in resolve_ports(server.number, gateway.targets, gateway.legacy):
                _merge_server(merged, server, resolved, ports_seen, plain_text, non_plain_binds, tls_hosts)
    return merged


def claim_hosts(known: dict[str, str], hosts: Iterable[str], bind: str) -> list[str]:
    """Claim `hosts` on the address `bind` for one TLS server or route, as Istio lets only the
    first of them have a host on a port: the hosts already claimed there (then nothing is
    claimed), or none once all are recorded in `known` (host -> bind)."""
    hosts = list(hosts)
    duplicates = [host for host in hosts if known.get(host) == bind]
    if not duplicates:
        known.update({host: bind for host in hosts})
    return duplicates


def _merge_server(merged: MergedGateway, server: GatewayServer, resolved: int, ports_seen: set[int],
                  plain_text: dict[int, ServerPort], non_plain_binds: dict[int, set[str]],
                  tls_hosts: dict[int, dict[str, str]]) -> None:
    name = route_name(server, resolved)
    where = f"Gateway {server.gateway} server {server.port_name} ({server.number}/{server.server.port.protocol})"
    if server.tls is not None:
        duplicates = claim_hosts(tls_hosts.setdefault(resolved, {}), server.hosts, server.bind)
        if duplicates:
            merged.warnings.append(f"{where}: skipped, host {', '.join(duplicates)} is already served with TLS "
                                   f"on port {resolved}")
            return
        merged.tls_info[server] = TLSServerInfo(name, server.sni_hosts)
        if server.tls_mode == AUTO_PASSTHROUGH:
            merged.auto_passthrough_hosts.update(server.hosts)
    port = ServerPort(resolved, server.server.port.protocol, server.bind)
    if resolved not in ports_seen:
        ports_seen.add(resolved)
        if not server.is_tls:
            plain_text[resolved] = port
        if server.is_http:
            merged.servers_by_route[name] = [server]
        merged.servers[port] = MergedServers([server], name)
        merged.server_ports.append(port)
        return
    current = plain_text.get(resolved)
    if current is not None:
        if not _can_merge(protocols.parse(current.protocol), server.protocol) and current.bind == port.bind:
            merged.warnings.append(f"{where}: skipped, port {resolved} already serves {current.protocol}")
            return
        if not name and current.bind == port.bind:
            merged.warnings.append(f"{where}: skipped, port {resolved} already has a {current.protocol} server")
            return
        if current.bind != port.bind:
            entry = merged.servers.get(port)
            if entry is None:
                entry = merged.servers[port] = MergedServers()
                merged.server_ports.append(port)
            entry.route_name = name
            entry.servers.append(server)
        else:
            merged.servers[current].servers.append(server)
        merged.servers_by_route.setdefault(name, []).append(server)
        return
    if server.is_http:
        if not name:
            merged.warnings.append(f"{where}: skipped, no route configuration name")
            return
        if name in merged.servers_by_route:
            merged.warnings.append(f"{where}: skipped, route configuration {name} is already taken")
            return
        merged.servers_by_route[name] = [server]
    binds = non_plain_binds.setdefault(resolved, set())
    new_bind = port.bind not in binds
    binds.add(port.bind)
    if server.tls is None and not new_bind:
        merged.warnings.append(f"{where}: skipped, a plain-text server on port {resolved}, which serves TLS")
        return
    entry = merged.servers.get(port)
    if entry is None:
        merged.servers[port] = MergedServers([server])
        merged.server_ports.append(port)
    else:
        entry.servers.append(server)


def hosts_for_namespace(hosts: Iterable[str], namespace: str) -> list[str]:
    """The server hosts usable by config in `namespace`: `ns/h` only for that namespace, with the
    namespace removed; unqualified hosts for every namespace (Istio's NamesForNamespace)."""
    out: list[str] = []
    for host in hosts:
        ns, slash, name = host.partition("/")
        if not slash:
            out.append(host)
        elif ns in (namespace, "*"):
            out.append(name)
    return out


def virtual_services_for_gateway(virtual_services: Sequence[VirtualServiceView], proxy_namespace: str,
                                 gateway: str) -> list[VirtualServiceView]:
    """The VirtualServices bound to `gateway` (`ns/name`) that the gateway pod's namespace sees,
    in Istio's order: private to that namespace, exported to it by name, then public ones (those
    made of Gateway API routes in that namespace first); oldest first within each group."""
    private: list[VirtualServiceView] = []
    exported: list[VirtualServiceView] = []
    public_local: list[VirtualServiceView] = []
    public: list[VirtualServiceView] = []
    for vs in virtual_services:
        if gateway not in vs.gateways:
            continue
        written = set(vs.spec.export_to)
        if not written or "*" in written:
            (public_local if vs.gateway_semantics and vs.namespace == proxy_namespace else public).append(vs)
        elif "." in written and vs.namespace == proxy_namespace:
            private.append(vs)
        elif proxy_namespace in written:
            exported.append(vs)
    return private + exported + public_local + public
