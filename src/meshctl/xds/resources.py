"""The unit everything downstream of translation shares: Envoy resources packed once.

Translation produces, per proxy, a map from type URL to named resources. Each resource is packed
into an `Any` exactly once and carries a content hash as its version, so the ADS server can share
the same bytes with every proxy that receives it, skip unchanged resources, and tell a restarted
Envoy that it already holds the current version. `translate -o json`, serve's
`istio.io/debug/config_dump` and the expected side of `proxy-status` all render the same objects
as an Envoy admin ConfigDump.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf import any_pb2
from google.protobuf.message import Message

if TYPE_CHECKING:
    from envoy.admin.v3 import config_dump_pb2

TYPE_PREFIX = "type.googleapis.com/"
CLUSTER = TYPE_PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = TYPE_PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = TYPE_PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = TYPE_PREFIX + "envoy.config.route.v3.RouteConfiguration"
SECRET = TYPE_PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"

# The order of a full push (Istio's PushOrder): clusters before their endpoints, listeners before
# their routes, so nothing Envoy receives refers to something it does not have yet.
PUSH_ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
SHORT_NAMES = {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS", SECRET: "SDS"}


@dataclass(frozen=True, slots=True)
class Packed:
    """One resource: its name, a content-derived version, and the `Any` every stream shares."""

    name: str
    version: str
    resource: any_pb2.Any

    @classmethod
    def of(cls, name: str, message: Message) -> Packed:
        """Serialize once (deterministically, so equal content gives an equal version)."""
        value = message.SerializeToString(deterministic=True)
        packed = any_pb2.Any(type_url=TYPE_PREFIX + message.DESCRIPTOR.full_name, value=value)
        return cls(name, hashlib.blake2b(value, digest_size=8).hexdigest(), packed)


ProxyResources = Mapping[str, Mapping[str, Packed]]


def by_name(items: Iterable[Packed]) -> dict[str, Packed]:
    """Resources keyed by name, keeping the first of duplicates (as Istio does)."""
    out: dict[str, Packed] = {}
    for item in items:
        out.setdefault(item.name, item)
    return out


def to_config_dump(resources: ProxyResources, version_info: str = "",
                   types: Iterable[str] = PUSH_ORDER) -> config_dump_pb2.ConfigDump:
    """The resources as Envoy's admin `/config_dump` shows dynamic config (with `include_eds`).

    Sections come in Envoy's order (Clusters, Endpoints, Listeners, Routes, Secrets) so that tools
    reading a real dump read this one too; `types` picks which sections appear. The admin protos
    (they pull in the whole bootstrap tree) are imported here, not at start-up: serve opens its
    port before it needs them.
    """
    from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2

    wanted = set(types)
    clusters = config_dump_shared_pb2.ClustersConfigDump(version_info=version_info)
    for item in resources.get(CLUSTER, {}).values():
        entry = clusters.dynamic_active_clusters.add(version_info=item.version)
        entry.cluster.CopyFrom(item.resource)
    endpoints = config_dump_shared_pb2.EndpointsConfigDump()
    for item in resources.get(ENDPOINT, {}).values():
        entry = endpoints.dynamic_endpoint_configs.add(version_info=item.version)
        entry.endpoint_config.CopyFrom(item.resource)
    listeners = config_dump_shared_pb2.ListenersConfigDump(version_info=version_info)
    for item in resources.get(LISTENER, {}).values():
        entry = listeners.dynamic_listeners.add(name=item.name)
        entry.active_state.version_info = item.version
        entry.active_state.listener.CopyFrom(item.resource)
    routes = config_dump_shared_pb2.RoutesConfigDump()
    for item in resources.get(ROUTE, {}).values():
        entry = routes.dynamic_route_configs.add(version_info=item.version)
        entry.route_config.CopyFrom(item.resource)
    dump = config_dump_pb2.ConfigDump()
    for type_url, section in ((CLUSTER, clusters), (ENDPOINT, endpoints), (LISTENER, listeners), (ROUTE, routes)):
        if type_url in wanted:
            dump.configs.add().Pack(section)
    secrets = resources.get(SECRET)
    if secrets and SECRET in wanted:
        secret_dump = config_dump_pb2.SecretsConfigDump()
        for item in secrets.values():
            entry = secret_dump.dynamic_active_secrets.add(name=item.name, version_info=item.version)
            entry.secret.CopyFrom(item.resource)
        dump.configs.add().Pack(secret_dump)
    return dump
