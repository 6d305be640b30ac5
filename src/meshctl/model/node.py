"""Who a node is, by Istio's conventions: the `TYPE~IP~POD.NAMESPACE~DOMAIN` node id and metadata.

Istio-injected sidecars (and anything that mimics them) identify as
`sidecar~10.1.2.3~web-0.default~default.svc.cluster.local` and describe themselves in node
metadata. Following the same rules as istiod (`ParseServiceNodeWithMetadata`) lets such proxies
connect unchanged and keys proxy-status by the same `POD.NAMESPACE` id istioctl shows. The ADS
server knows none of this: `ISTIO_NODES` is the node identity it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshctlError
from meshctl.peer import PEER_IDENTITY

if TYPE_CHECKING:
    from envoy.config.core.v3 import base_pb2 as core_pb2

__all__ = [
    "ISTIO_NODES",
    "Identity",
    "InvalidNodeError",
    "IstioNodes",
    "NODE_TYPES",
    "ProxyNode",
    "ROUTER",
    "SIDECAR",
    "claimed_account",
    "is_debug_client",
    "metadata_of",
    "minimal_node",
    "node_id",
    "parse_node",
]

SIDECAR = "sidecar"
ROUTER = "router"
NODE_TYPES = (SIDECAR, ROUTER)
# The node metadata status answers show (istioctl's CLUSTER and VERSION columns, `-n` filtering).
_SHOWN_METADATA = ("CLUSTER_ID", "NAMESPACE", "ISTIO_VERSION")


class InvalidNodeError(MeshctlError):
    """The node id is not in Istio's `TYPE~IP~POD.NS~DOMAIN` form."""


def node_id(node_type: str, ip: str, proxy_id: str, dns_domain: str) -> str:
    """`sidecar~10.1.2.3~web-0.default~default.svc.cluster.local`."""
    return f"{node_type}~{ip}~{proxy_id}~{dns_domain}"


@dataclass(frozen=True, slots=True)
class ProxyNode:
    """The parsed identity of a connected proxy; `istio_extensions` says its Envoy build
    carries Istio's own extensions (istio-proxy), which the node lists."""

    type: str
    ips: tuple[str, ...]
    id: str
    namespace: str
    dns_domain: str
    metadata: Mapping[str, Any]
    istio_extensions: bool = False

    @property
    def pod(self) -> str:
        return self.id.rsplit(".", 1)[0]

    @property
    def cluster_id(self) -> str:
        return str(self.metadata.get("CLUSTER_ID", ""))

    @property
    def istio_version(self) -> str:
        return str(self.metadata.get("ISTIO_VERSION", ""))

    @property
    def labels(self) -> Mapping[str, str]:
        labels = self.metadata.get("LABELS")
        return labels if isinstance(labels, dict) else {}

    @property
    def interception_mode(self) -> str:
        return str(self.metadata.get("INTERCEPTION_MODE", "REDIRECT"))

    @property
    def verified_identity(self) -> str:
        """What the node's connection proved (the server writes it; see xds.identity)."""
        return str(self.metadata.get(PEER_IDENTITY, ""))


def metadata_of(node: core_pb2.Node) -> dict[str, Any]:
    """Node metadata as plain values (a Struct on the wire)."""
    from google.protobuf import json_format  # not needed to start serving: keep it off start-up

    return json_format.MessageToDict(node.metadata) if node.HasField("metadata") else {}


def parse_node(node: core_pb2.Node) -> ProxyNode:
    """Istio's rules: four `~`-separated parts, an application node type, IPs from INSTANCE_IPS."""
    parts = node.id.split("~")
    if len(parts) != 4:
        raise InvalidNodeError(
            f"node id {node.id!r} is not TYPE~IP~POD.NAMESPACE~DOMAIN "
            "(e.g. sidecar~10.1.2.3~web-0.default~default.svc.cluster.local)"
        )
    node_type, ip, proxy_id, domain = parts
    if node_type not in NODE_TYPES:
        raise InvalidNodeError(f"node id {node.id!r}: type {node_type!r} is not one of {', '.join(NODE_TYPES)}")
    if not proxy_id:
        raise InvalidNodeError(f"node id {node.id!r}: the POD.NAMESPACE part is empty")
    metadata = metadata_of(node)
    instance_ips = metadata.get("INSTANCE_IPS")
    ips = tuple(i for i in str(instance_ips).split(",") if i) if instance_ips else (ip,)
    namespace = str(metadata.get("NAMESPACE") or "")
    if not namespace and "." in proxy_id:
        namespace = proxy_id.rsplit(".", 1)[1]
    if not namespace and "." in domain:
        namespace = domain.split(".", 1)[0]
    extensions = any(extension.name.startswith("istio.") for extension in node.extensions)
    return ProxyNode(node_type, ips, proxy_id, namespace, domain, metadata, extensions)


def claimed_account(node: core_pb2.Node) -> tuple[str, str]:
    """The namespace and service account a node says it runs as (`NAMESPACE`, `SERVICE_ACCOUNT`
    metadata, as the injector or `meshctl bootstrap` writes them; the namespace falls back to
    the node id's, then to `default`). A claim, not a proof: authenticate it before trusting it."""
    metadata = metadata_of(node)
    namespace = str(metadata.get("NAMESPACE") or "")
    if not namespace:
        parts = node.id.split("~")
        namespace = parts[2].rsplit(".", 1)[1] if len(parts) == 4 and "." in parts[2] else "default"
    return namespace, str(metadata.get("SERVICE_ACCOUNT") or "default")


def is_debug_client(node: core_pb2.Node) -> bool:
    """True for clients that only ask questions (istioctl, meshctl proxy-status), not proxies.

    istiod lists a connection in syncz only when its metadata carries a ProxyConfig; debug
    clients instead set GENERATOR. meshctl also accepts ISTIO_VERSION as the mark of a proxy, so
    that hand-written bootstraps without a PROXY_CONFIG still show up.
    """
    metadata = node.metadata.fields
    if "GENERATOR" in metadata:
        return True
    return "PROXY_CONFIG" not in metadata and "ISTIO_VERSION" not in metadata


def minimal_node(proxy_id: str) -> core_pb2.Node:
    """The node a proxy `POD.NS` would present, for questions about proxies that are not connected.

    It claims nothing but its id: no metadata, so the configuration answers for it only if its
    registry holds that workload. A node that names a namespace is served from its metadata
    (`model.proxy.for_node`), which for a stand-in would make a config up for any id at all.
    """
    from envoy.config.core.v3 import base_pb2 as core_pb2

    namespace = proxy_id.rsplit(".", 1)[1] if "." in proxy_id else "default"
    return core_pb2.Node(id=node_id(SIDECAR, "0.0.0.0", proxy_id, f"{namespace}.svc.cluster.local"))


@dataclass(frozen=True, slots=True)
class Identity:
    """What the ADS server knows of a node (see meshctl.xds.identity): the `POD.NS` key
    istioctl shows, whether it is a proxy rather than a debug client, the metadata status
    answers show, and why its id is refused, if it is."""

    key: str
    proxy: bool
    shown: Mapping[str, str] = field(default_factory=dict)
    refusal: str = ""


class IstioNodes:
    """Istio's node naming as the ADS server's node identity (its `NodeHash`)."""

    def identify(self, node: core_pb2.Node) -> Identity:
        proxy = not is_debug_client(node)
        try:
            parsed = parse_node(node)
        except InvalidNodeError as exc:
            return Identity(node.id, proxy, refusal=str(exc))
        shown = {key: str(parsed.metadata[key]) for key in _SHOWN_METADATA if key in parsed.metadata}
        return Identity(parsed.id, proxy, shown)

    def stand_in(self, key: str) -> core_pb2.Node:
        return minimal_node(key)


ISTIO_NODES = IstioNodes()
