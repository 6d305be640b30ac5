"""The kinds meshctl understands, with their API groups, versions and schemas."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshctl.config.kinds import gatewayapi, kubernetes
from meshctl.config.kinds.networking import (
    DestinationRule,
    Gateway,
    ServiceEntry,
    Sidecar,
    VirtualService,
    WorkloadEntry,
)
from meshctl.config.kinds.security import AuthorizationPolicy, PeerAuthentication, RequestAuthentication
from meshctl.config.messages import Message
from meshctl.config.schema import Obj

__all__ = [
    "GATEWAY_API",
    "ISTIO_NETWORKING",
    "ISTIO_SECURITY",
    "KINDS",
    "KindInfo",
    "NETWORKING_VERSIONS",
    "SECURITY_VERSIONS",
    "split_api_version",
]

ISTIO_NETWORKING = "networking.istio.io"
ISTIO_SECURITY = "security.istio.io"
GATEWAY_API = gatewayapi.GROUP
NETWORKING_VERSIONS = ("v1", "v1beta1", "v1alpha3")
SECURITY_VERSIONS = ("v1", "v1beta1")


@dataclass(frozen=True, slots=True)
class KindInfo:
    """How to read one kind.

    `body` is "spec" when the kind keeps its content under `spec`; kinds such as Endpoints keep
    their fields at the top level, and then `body` is "" and `spec` declares those fields.
    `spec` is the kind's message (its typed view and schema). `status`, for kinds whose status
    meshctl reads (a Pod's IP and phase), is the message of that status. A `sensitive` kind's
    body is kept as a SensitiveSpec, which never prints its values.
    """

    kind: str
    group: str
    versions: tuple[str, ...]
    spec: type[Message]
    body: str = "spec"
    namespaced: bool = True
    status: type[Message] | None = None
    sensitive: bool = False
    key: str = ""

    @property
    def resource_kind(self) -> str:
        """The kind its resources carry: the kind, or `key` where two groups share a kind name
        (the Gateway API's Gateway is `KubernetesGateway`, as in Istio, beside Istio's Gateway)."""
        return self.key or self.kind

    @property
    def schema(self) -> Obj:
        return self.spec.SCHEMA

    @property
    def status_schema(self) -> Obj | None:
        return self.status.SCHEMA if self.status is not None else None

    def view_of(self, body: Mapping[str, Any]) -> Message:
        """The typed view of a validated body."""
        return self.spec.of(body)

    def status_view_of(self, status: Mapping[str, Any]) -> Message | None:
        """The typed view of a validated status (an absent status reads as an empty one)."""
        return self.status.of(status) if self.status is not None else None


_ALL = [
    KindInfo("VirtualService", ISTIO_NETWORKING, NETWORKING_VERSIONS, VirtualService),
    KindInfo("DestinationRule", ISTIO_NETWORKING, NETWORKING_VERSIONS, DestinationRule),
    KindInfo("Gateway", ISTIO_NETWORKING, NETWORKING_VERSIONS, Gateway),
    KindInfo("ServiceEntry", ISTIO_NETWORKING, NETWORKING_VERSIONS, ServiceEntry),
    KindInfo("Sidecar", ISTIO_NETWORKING, NETWORKING_VERSIONS, Sidecar),
    KindInfo("WorkloadEntry", ISTIO_NETWORKING, NETWORKING_VERSIONS, WorkloadEntry),
    KindInfo("PeerAuthentication", ISTIO_SECURITY, SECURITY_VERSIONS, PeerAuthentication),
    KindInfo("AuthorizationPolicy", ISTIO_SECURITY, SECURITY_VERSIONS, AuthorizationPolicy),
    KindInfo("RequestAuthentication", ISTIO_SECURITY, SECURITY_VERSIONS, RequestAuthentication),
    KindInfo("Service", "", ("v1",), kubernetes.ServiceSpec, status=kubernetes.ServiceStatus),
    KindInfo("Endpoints", "", ("v1",), kubernetes.Endpoints, body=""),
    KindInfo("EndpointSlice", "discovery.k8s.io", ("v1",), kubernetes.EndpointSlice, body=""),
    KindInfo("Pod", "", ("v1",), kubernetes.PodSpec, status=kubernetes.PodStatus),
    KindInfo("Deployment", "apps", ("v1",), kubernetes.DeploymentSpec),
    KindInfo("Namespace", "", ("v1",), kubernetes.NamespaceSpec, namespaced=False),
    KindInfo("Node", "", ("v1",), kubernetes.NodeSpec, namespaced=False),
    KindInfo("ServiceAccount", "", ("v1",), kubernetes.ServiceAccount, body=""),
    KindInfo("Secret", "", ("v1",), kubernetes.Secret, body="", sensitive=True),
    KindInfo("Gateway", GATEWAY_API, ("v1", "v1beta1"), gatewayapi.Gateway, key="KubernetesGateway"),
    KindInfo("GatewayClass", GATEWAY_API, ("v1", "v1beta1"), gatewayapi.GatewayClass, namespaced=False),
    KindInfo("HTTPRoute", GATEWAY_API, ("v1", "v1beta1"), gatewayapi.HTTPRoute),
    KindInfo("GRPCRoute", GATEWAY_API, ("v1", "v1alpha2"), gatewayapi.GRPCRoute),
    KindInfo("TCPRoute", GATEWAY_API, ("v1alpha2", "v1alpha3"), gatewayapi.TCPRoute),
    KindInfo("TLSRoute", GATEWAY_API, ("v1alpha2", "v1alpha3"), gatewayapi.TLSRoute),
    KindInfo("ReferenceGrant", GATEWAY_API, ("v1beta1", "v1alpha2"), gatewayapi.ReferenceGrant),
]

KINDS: dict[tuple[str, str], KindInfo] = {(info.group, info.kind): info for info in _ALL}


def split_api_version(api_version: str) -> tuple[str, str]:
    """`networking.istio.io/v1` -> (`networking.istio.io`, `v1`); `v1` -> (``, `v1`)."""
    group, _, version = api_version.rpartition("/")
    return group, version
