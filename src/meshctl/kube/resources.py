"""The kinds meshctl reads from a cluster, as the API server names and serves them.

config/kinds says how a kind is validated; this table says where the API server keeps it:
group, the version meshctl reads it at, plural, short names (for the CRDs `meshctl install`
writes), scope, and the server-side filter a watch applies (Pods in phase Failed are no
workload's endpoint, so istiod does not even fetch them). Istio kinds are read at their
storage version `v1`; the API server converts objects written as v1beta1 or v1alpha3.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ISTIO", "REGISTRY", "ApiResource", "by_kind"]


@dataclass(frozen=True, slots=True)
class ApiResource:
    """A kind as the API serves it: where to list it, and the server-side filter to apply."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    field_selector: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        """The collection across all namespaces: `/api/v1/pods`, `/apis/G/V/PLURAL`."""
        return f"/apis/{self.group}/{self.version}/{self.plural}" if self.group else f"/api/{self.version}/{self.plural}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


_NETWORKING = "networking.istio.io"
_SECURITY = "security.istio.io"

REGISTRY: tuple[ApiResource, ...] = (
    ApiResource("", "v1", "namespaces", "Namespace", namespaced=False),
    ApiResource("", "v1", "nodes", "Node", namespaced=False),
    ApiResource("", "v1", "services", "Service"),
    ApiResource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    ApiResource("", "v1", "pods", "Pod", field_selector="status.phase!=Failed"),
)
"""The service registry: what Istio's Kubernetes controller watches (not the legacy Endpoints)."""

ISTIO: tuple[ApiResource, ...] = (
    ApiResource(_NETWORKING, "v1", "virtualservices", "VirtualService", short_names=("vs",)),
    ApiResource(_NETWORKING, "v1", "destinationrules", "DestinationRule", short_names=("dr",)),
    ApiResource(_NETWORKING, "v1", "gateways", "Gateway", short_names=("gw",)),
    ApiResource(_NETWORKING, "v1", "serviceentries", "ServiceEntry", short_names=("se",)),
    ApiResource(_NETWORKING, "v1", "sidecars", "Sidecar"),
    ApiResource(_NETWORKING, "v1", "workloadentries", "WorkloadEntry", short_names=("we",)),
    ApiResource(_SECURITY, "v1", "peerauthentications", "PeerAuthentication", short_names=("pa",)),
    ApiResource(_SECURITY, "v1", "authorizationpolicies", "AuthorizationPolicy", short_names=("ap",)),
    ApiResource(_SECURITY, "v1", "requestauthentications", "RequestAuthentication", short_names=("ra",)),
)
"""Istio's configuration: every Istio kind meshctl translates."""


def by_kind(kind: str) -> ApiResource:
    """The resource serving a kind meshctl reads from a cluster."""
    for resource in (*REGISTRY, *ISTIO):
        if resource.kind == kind:
            return resource
    raise KeyError(kind)
