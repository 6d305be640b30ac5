"""The kinds meshctl reads from a cluster, as the API server names and serves them.

config/kinds says how a kind is validated; this table says where the API server keeps it:
group, the versions to read it at (newest first), plural, short names (for the CRDs `meshctl
install` writes), scope, and the server-side filter a watch applies (Pods in phase Failed are
no workload's endpoint, so istiod does not even fetch them). Istio kinds are read at `v1`, which
the API server converts objects written as v1beta1 or v1alpha3 to; a cluster whose CRDs are too
old to serve v1 is read at the newest version it serves.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshctl.config.kinds import NETWORKING_VERSIONS, SECURITY_VERSIONS

__all__ = ["CREDENTIALS", "GATEWAY_API", "ISTIO", "REGISTRY", "ApiResource", "by_kind", "mesh_configmap"]


@dataclass(frozen=True, slots=True)
class ApiResource:
    """A kind as the API serves it: where to list it, and the server-side filter to apply."""

    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool = True
    field_selector: str = ""
    short_names: tuple[str, ...] = ()
    namespace: str = ""
    """Read in this namespace only (istiod's own ConfigMap), not across the cluster."""

    @property
    def version(self) -> str:
        """The version meshctl prefers (the storage version of Istio's CRDs)."""
        return self.versions[0]

    def api_version(self, version: str = "") -> str:
        version = version or self.version
        return f"{self.group}/{version}" if self.group else version

    def path(self, version: str = "") -> str:
        """The collection across all namespaces (`/api/v1/pods`, `/apis/G/V/PLURAL`), or in
        `namespace` only (`/api/v1/namespaces/NS/configmaps`)."""
        version = version or self.version
        base = f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"
        scope = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{base}{scope}/{self.plural}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


_NETWORKING = "networking.istio.io"
_SECURITY = "security.istio.io"
_V1 = ("v1",)

REGISTRY: tuple[ApiResource, ...] = (
    ApiResource("", _V1, "namespaces", "Namespace", namespaced=False),
    ApiResource("", _V1, "nodes", "Node", namespaced=False),
    ApiResource("", _V1, "services", "Service"),
    ApiResource("discovery.k8s.io", _V1, "endpointslices", "EndpointSlice"),
    ApiResource("", _V1, "pods", "Pod", field_selector="status.phase!=Failed"),
)
"""The service registry: what Istio's Kubernetes controller watches (not the legacy Endpoints)."""

ISTIO: tuple[ApiResource, ...] = (
    ApiResource(_NETWORKING, NETWORKING_VERSIONS, "virtualservices", "VirtualService", short_names=("vs",)),
    ApiResource(_NETWORKING, NETWORKING_VERSIONS, "destinationrules", "DestinationRule", short_names=("dr",)),
    ApiResource(_NETWORKING, NETWORKING_VERSIONS, "gateways", "Gateway", short_names=("gw",)),
    ApiResource(_NETWORKING, NETWORKING_VERSIONS, "serviceentries", "ServiceEntry", short_names=("se",)),
    ApiResource(_NETWORKING, NETWORKING_VERSIONS, "sidecars", "Sidecar"),
    ApiResource(_NETWORKING, NETWORKING_VERSIONS, "workloadentries", "WorkloadEntry", short_names=("we",)),
    ApiResource(_SECURITY, SECURITY_VERSIONS, "peerauthentications", "PeerAuthentication", short_names=("pa",)),
    ApiResource(_SECURITY, SECURITY_VERSIONS, "authorizationpolicies", "AuthorizationPolicy", short_names=("ap",)),
    ApiResource(_SECURITY, SECURITY_VERSIONS, "requestauthentications", "RequestAuthentication",
                short_names=("ra",)),
)
"""Istio's configuration: every Istio kind meshctl translates."""

_GATEWAY_API = "gateway.networking.k8s.io"
GATEWAY_API: tuple[ApiResource, ...] = (
    ApiResource(_GATEWAY_API, ("v1", "v1beta1"), "gateways", "Gateway"),
    ApiResource(_GATEWAY_API, ("v1", "v1beta1"), "gatewayclasses", "GatewayClass", namespaced=False),
    ApiResource(_GATEWAY_API, ("v1", "v1beta1"), "httproutes", "HTTPRoute"),
    ApiResource(_GATEWAY_API, ("v1", "v1alpha2"), "grpcroutes", "GRPCRoute"),
    ApiResource(_GATEWAY_API, ("v1alpha3", "v1alpha2"), "tcproutes", "TCPRoute"),
    ApiResource(_GATEWAY_API, ("v1alpha3", "v1alpha2"), "tlsroutes", "TLSRoute"),
    ApiResource(_GATEWAY_API, ("v1beta1", "v1alpha2"), "referencegrants", "ReferenceGrant"),
)
"""The Kubernetes Gateway API, as Istio reads it (its CRDs are the cluster's own: `meshctl install`
does not write them)."""

CREDENTIALS: tuple[ApiResource, ...] = (
    ApiResource("", _V1, "secrets", "Secret",
                field_selector="type!=kubernetes.io/service-account-token,type!=helm.sh/release.v1"),
)
"""The Secrets gateways' credentialNames name (what istiod's credentials controller watches: not
service account tokens, not Helm's releases)."""


def mesh_configmap(namespace: str, name: str) -> ApiResource:
    """The ConfigMap istiod reads its mesh config from, in its own namespace (key `mesh`)."""
    return ApiResource("", _V1, "configmaps", "ConfigMap", field_selector=f"metadata.name={name}", namespace=namespace)


def by_kind(kind: str) -> ApiResource:
    """The resource serving a kind meshctl reads from a cluster."""
    for resource in (*REGISTRY, *ISTIO, *CREDENTIALS):
        if resource.kind == kind:
            return resource
    raise KeyError(kind)
