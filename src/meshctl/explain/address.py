"""Where a request's host name leads: the destination address the application connects to.

An application resolves `reviews` through the pod's DNS search path (`NS.svc.cluster.local`,
`svc.cluster.local`, `cluster.local`) before trying the name as written, and connects to the
address it gets: a Service's ClusterIP, a ServiceEntry address, a pod IP for a headless
Service. With the input files, `RegistryResolver` answers from the mesh's registry, as cluster
DNS would. Without them, `infer_from_listeners` reads the answer from the proxy's own config,
where Istio names address-bound listeners' clusters and routes after the service
(`outbound|3306||mysql.db.svc.cluster.local`). An external name resolves outside the mesh: the
address stays unknown, and what depends on it says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshctl.explain.protos import HCM, TCP_PROXY, type_name, unpack
from meshctl.explain.view import Identity

if TYPE_CHECKING:
    from meshctl.model.service import Service
    from meshctl.model.snapshot import MeshSnapshot

__all__ = ["Resolution", "RegistryResolver", "infer_from_listeners", "search_names"]

WILDCARDS = ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class Resolution:
    """An address for the host and how it was found."""

    address: str
    how: str


def search_names(host: str, identity: Identity) -> list[str]:
    """The names DNS tries for `host` from the proxy's pod, in order (ndots 5)."""
    if host.endswith("."):
        return [host.rstrip(".")]
    domain = ""
    if ".svc." in f".{identity.dns_domain}.":
        domain = identity.dns_domain.split(".svc.", 1)[1]
    searches = []
    if domain:
        if identity.namespace:
            searches.append(f"{identity.namespace}.svc.{domain}")
        searches += [f"svc.{domain}", domain]
    expanded = [f"{host}.{search}" for search in searches]
    return [*expanded, host] if host.count(".") < 5 else [host, *expanded]


class RegistryResolver:
    """Cluster DNS, answered from the mesh's registry."""

    def __init__(self, snapshot: MeshSnapshot) -> None:
        self._snapshot = snapshot

    def service(self, host: str, identity: Identity) -> Service | None:
        """The service DNS gives the name of, as the proxy's pod looks it up."""
        for name in search_names(host, identity):
            found = self._snapshot.registry.services_for_host(name)
            if found:
                return found[0]
        return None

    def resolve(self, host: str, port: int, identity: Identity) -> Resolution | None:
        service = self.service(host, identity)
        if service is None:
            return None
        if service.has_vip and "/" not in service.address:
            kind = "ClusterIP" if service.from_kubernetes else "address"
            return Resolution(service.address, f"{service.hostname} {kind}, from {service.source.ref()}")
        service_port = service.port(port)
        if service_port is not None:
            for endpoint in self._snapshot.registry.endpoints(service, service_port):
                return Resolution(endpoint.address, f"{service.hostname} is headless: DNS answers its endpoints, "
                                                    f"the first of which is {endpoint.address}")
        return None

    def target_port(self, host: str, port: int, identity: Identity) -> tuple[int, str] | None:
        """For a call arriving at the proxy's workload through a Service: the workload port
        the Service's `port` forwards to (`targetPort`, by number or by container port name)."""
        service = self.service(host, identity)
        workload = self._snapshot.registry.workload(f"{identity.name}") if identity.name else None
        if service is None:
            return None
        service_port = service.port(port)
        if service_port is None or service_port.target_port is None:
            return None
        target = service_port.target_port
        if isinstance(target, str):
            if workload is None or target not in workload.ports:
                return None
            target = workload.ports[target]
        if target == port:
            return None
        return target, f"{service.hostname} port {port} forwards to targetPort {target}"


def infer_from_listeners(listeners: Sequence[Any], host: str, port: int, identity: Identity) -> Resolution | None:
    """An address-bound listener on `port` whose chains send to the host (module docstring)."""
    names = set(search_names(host, identity))
    for listener in listeners:
        address = listener.address.socket_address.address
        if address in WILDCARDS:
            continue
        for chain in [*listener.filter_chains, listener.default_filter_chain]:
            for network_filter in chain.filters:
                for target in _targets(network_filter):
                    if target in names:
                        return Resolution(address, f"{listener.name} serves {target} "
                                                   "(from the proxy's config; DNS is not consulted)")
    return None


def _targets(network_filter: Any) -> list[str]:
    """Service host names a network filter sends to: its clusters' hosts, its RDS name's host."""
    if not network_filter.HasField("typed_config"):
        return []
    kind = type_name(network_filter.typed_config)
    config = unpack(network_filter.typed_config) if kind in (TCP_PROXY, HCM) else None
    if config is None:
        return []
    if kind == TCP_PROXY:
        clusters = [config.cluster] if config.cluster else [c.name for c in config.weighted_clusters.clusters]
        return [name.split("|")[3] for name in clusters if name.count("|") == 3]
    name = config.rds.route_config_name if config.HasField("rds") else ""
    return [name.rsplit(":", 1)[0]] if ":" in name else []
