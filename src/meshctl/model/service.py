"""Services and their endpoints: the registry half of the mesh model."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshctl.config.resource import Resource

__all__ = [
    "ALIAS",
    "CLIENT_SIDE_LB",
    "DNS_LB",
    "DNS_ROUND_ROBIN",
    "DRAINING",
    "Endpoint",
    "HEALTHY",
    "PASSTHROUGH",
    "POD",
    "Service",
    "ServicePort",
    "ServiceTarget",
    "TERMINATING",
    "UNHEALTHY",
    "WILDCARD_ADDRESS",
    "WORKLOAD_ENTRY",
    "Workload",
]

# Istio's service resolution modes.
CLIENT_SIDE_LB = "ClientSideLB"
PASSTHROUGH = "Passthrough"
DNS_LB = "DNS"
DNS_ROUND_ROBIN = "DNSRoundRobin"
ALIAS = "Alias"

WILDCARD_ADDRESS = "0.0.0.0"

# What a workload is (`Workload.kind`): a pod (given, or a Deployment's replica) or a WorkloadEntry.
POD = "Pod"
WORKLOAD_ENTRY = "WorkloadEntry"

# An endpoint's health, as istiod reads it from EndpointSlice conditions and sends it in EDS.
HEALTHY = "HEALTHY"
UNHEALTHY = "UNHEALTHY"
DRAINING = "DRAINING"
TERMINATING = "TERMINATING"


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    protocol: str
    target_port: int | str | None = None

    def target_on(self, named: Mapping[str, int]) -> int | None:
        """The port a workload serves this service port on: the target port, a named container
        port looked up in `named` (None when the workload has no port of that name), or the
        service port itself when no target is given."""
        target = self.target_port
        if target is None:
            return self.port
        if isinstance(target, int):
            return target
        return named.get(target)


@dataclass(frozen=True, slots=True, eq=False)
class Service:
    """One host a proxy can send traffic to, from a Kubernetes Service or a ServiceEntry host.

    `export_to` is resolved: `.` became the service's namespace; `*` means everyone and `~`
    nobody. `source` is the object it came from (for analysis and metadata). `selector` picks
    the workloads behind the service (a Kubernetes Service's selector, a ServiceEntry's
    workloadSelector); `inline_workloads` are a ServiceEntry's own endpoints.
    """

    hostname: str
    namespace: str
    name: str
    ports: tuple[ServicePort, ...]
    address: str
    resolution: str
    source: Resource
    export_to: frozenset[str] = frozenset({"*"})
    selector: Mapping[str, str] | None = None
    mesh_external: bool = False
    subject_alt_names: tuple[str, ...] = ()
    alias_for: str = ""
    publish_not_ready: bool = False
    send_unhealthy: bool = False  # a trafficDistribution: spill-over needs unhealthy endpoints' health
    persistent_session: bool = False  # draining endpoints keep their sessions
    from_kubernetes: bool = True
    inline_workloads: tuple[Workload, ...] = ()

    @property
    def created(self) -> str:
        return self.source.created

    def port(self, number: int) -> ServicePort | None:
        for port in self.ports:
            if port.port == number:
                return port
        return None

    def visible_to(self, namespace: str) -> bool:
        return "*" in self.export_to or namespace in self.export_to

    @property
    def has_vip(self) -> bool:
        return self.address not in (WILDCARD_ADDRESS, "")


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """A pod, a Deployment replica or a WorkloadEntry: something with an IP that serves traffic."""

    name: str
    namespace: str
    ip: str
    labels: Mapping[str, str]
    service_account: str
    owner: str
    source: Resource
    ports: Mapping[str, int] = field(default_factory=dict)
    injected: bool = True
    locality: str = ""
    weight: int = 1
    ready: bool = True
    kind: str = POD
    network: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def proxy_id(self) -> str:
        return f"{self.name}.{self.namespace}"

    def content_key(self) -> tuple[Hashable, ...]:
        """Every field, the source object by its revision: equal keys mean workloads alike in
        all a proxy or its config can read, though one was made from an earlier snapshot
        (workloads themselves compare by identity, as they are made anew with each one)."""
        return (self.name, self.namespace, self.ip, tuple(self.labels.items()), self.service_account, self.owner,
                self.source.revision, tuple(self.ports.items()), self.injected, self.locality, self.weight,
                self.ready, self.kind, self.network, tuple(self.annotations.items()))

    def spiffe_id(self, trust_domain: str) -> str:
        return f"spiffe://{trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def canonical_name(self) -> str:
        for key in ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app"):
            value = self.labels.get(key)
            if value:
                return value
        return self.owner

    @property
    def canonical_revision(self) -> str:
        for key in ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"):
            value = self.labels.get(key)
            if value:
                return value
        return "latest"


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    """One port of a service the workload itself serves (Istio's ServiceTarget): the service,
    its port, and the workload port that receives the traffic (the target port)."""

    service: Service
    port: ServicePort
    target_port: int


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address behind one service port, with what EDS metadata and subsets need."""

    address: str
    port: int
    labels: Mapping[str, str]
    workload: Workload | None = None
    health: str = HEALTHY

    @property
    def locality(self) -> str:
        return self.workload.locality if self.workload else ""

    @property
    def weight(self) -> int:
        return self.workload.weight if self.workload else 1

    @property
    def injected(self) -> bool:
        if self.labels.get("security.istio.io/tlsMode") == "istio":
            return True
        return bool(self.workload and self.workload.injected)
