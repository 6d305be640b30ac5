"""Every kind of Envoy resource meshctl knows, once: the table the rest of the code reads.

Translation, the ADS server, proxy-status and the config-dump readers all need the same facts
about a kind (its type URL, its short name, where Envoy's admin `/config_dump` shows it, how its
resources are named, whether a SotW response must list all of them, where it goes in a push).
They are written here once, in push order (go-control-plane's `ResponseType` order: clusters
before their endpoints, listeners before their routes), so adding an xDS type is one entry in
`KINDS`.

Nothing here imports a generated message module at import time: status, inspect and serve
(before it opens its port) read the table, and must stay quick to start.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

__all__ = [
    "BY_TYPE_URL",
    "CONFIG_DUMP",
    "DEBUG_PREFIX",
    "DumpSection",
    "FULL_STATE",
    "KINDS",
    "Kind",
    "PUSH_ORDER",
    "SYNCZ",
    "TYPE_PREFIX",
    "admin_class",
    "push_rank",
    "section_name",
    "short_name",
    "type_url_of",
]

TYPE_PREFIX = "type.googleapis.com/"

# istiod's debug pseudo types, answered on the ADS stream: not resource kinds, never pushed.
DEBUG_PREFIX = "istio.io/debug/"
SYNCZ = DEBUG_PREFIX + "syncz"
CONFIG_DUMP = DEBUG_PREFIX + "config_dump"


def type_url_of(message: Message | type[Message]) -> str:
    """The type URL an `Any` holding this message (or message class) carries."""
    name: str = message.DESCRIPTOR.full_name
    return TYPE_PREFIX + name


@dataclass(frozen=True, slots=True)
class DumpSection:
    """Where Envoy's admin `/config_dump` shows a kind's dynamic resources.

    `section` is the admin message (`envoy.admin.v3.ClustersConfigDump`), `entries` its repeated
    field of dynamic resources, `resource` the path from an entry to the resource's `Any`
    (`active_state.listener`). The resource's version sits next to it; an entry with a `name`
    field gets the resource's name.
    """

    section: str
    entries: str
    resource: str

    def section_class(self) -> Any:
        return admin_class(self.section)


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of xDS resource.

    - `message`: the resource's full protobuf name; the type URL is `TYPE_PREFIX` + it.
    - `short`: the name Istio prints for it (`GetShortType`: CDS, EDS, ...).
    - `module`: the xds-protos module of the message; empty for Istio-only kinds it lacks.
    - `name_field`: the field that names a resource (`Cluster.name`,
      `ClusterLoadAssignment.cluster_name`).
    - `full_state`: a SotW response lists every resource of the kind the client holds, and
      anything left out is deleted (LDS, CDS); other kinds may send only what changed. These
      are also the kinds Envoy subscribes to by wildcard.
    - `placeholder`: a name the config lacks is answered with an empty resource of that name, so
      Envoy does not wait out its fetch timeout (an RDS name with no routes, an EDS cluster with
      no endpoints).
    - `dump`: where `/config_dump` shows it, if it does.
    """

    message: str
    short: str
    module: str = ""
    name_field: str = "name"
    full_state: bool = False
    placeholder: bool = False
    dump: DumpSection | None = None

    @property
    def type_url(self) -> str:
        return TYPE_PREFIX + self.message

    def message_class(self) -> Any:
        """The xds-protos class of the resource (imported on first use)."""
        if not self.module:
            raise LookupError(f"{self.message} is not a message xds-protos provides")
        return _message_class(self.module, self.message.rsplit(".", 1)[1])

    def name_of(self, message: Any) -> str:
        """The name a resource of this kind is subscribed to and keyed by."""
        return str(getattr(message, self.name_field))

    def empty(self, name: str) -> Message:
        """A resource of this kind with only its name set."""
        message: Message = self.message_class()()
        setattr(message, self.name_field, name)
        return message


@functools.cache
def _message_class(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


KINDS: tuple[Kind, ...] = (
    Kind("envoy.config.cluster.v3.Cluster", "CDS", "envoy.config.cluster.v3.cluster_pb2", full_state=True,
         dump=DumpSection("envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters", "cluster")),
    Kind("envoy.config.endpoint.v3.ClusterLoadAssignment", "EDS", "envoy.config.endpoint.v3.endpoint_pb2",
         name_field="cluster_name", placeholder=True,
         dump=DumpSection("envoy.admin.v3.EndpointsConfigDump", "dynamic_endpoint_configs", "endpoint_config")),
    Kind("envoy.config.listener.v3.Listener", "LDS", "envoy.config.listener.v3.listener_pb2", full_state=True,
         dump=DumpSection("envoy.admin.v3.ListenersConfigDump", "dynamic_listeners", "active_state.listener")),
    Kind("envoy.config.route.v3.RouteConfiguration", "RDS", "envoy.config.route.v3.route_pb2", placeholder=True,
         dump=DumpSection("envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs", "route_config")),
    Kind("envoy.extensions.transport_sockets.tls.v3.Secret", "SDS", "envoy.extensions.transport_sockets.tls.v3.secret_pb2",
         dump=DumpSection("envoy.admin.v3.SecretsConfigDump", "dynamic_active_secrets", "secret")),
    Kind("envoy.config.core.v3.TypedExtensionConfig", "ECDS", "envoy.config.core.v3.extension_pb2",
         dump=DumpSection("envoy.admin.v3.EcdsConfigDump", "ecds_filters", "ecds_filter")),
    # Istio's own types (istiod serves them to ztunnel and istio-agent); xds-protos lacks them.
    Kind("istio.networking.nds.v1.NameTable", "NDS"),
    Kind("istio.mesh.v1alpha1.ProxyConfig", "PCDS"),
    Kind("istio.workload.Address", "WDS"),
    Kind("istio.security.Authorization", "WADS"),
)
BY_TYPE_URL: dict[str, Kind] = {kind.type_url: kind for kind in KINDS}

CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, EXTENSION_CONFIG = (kind.type_url for kind in KINDS[:6])
PUSH_ORDER: tuple[str, ...] = tuple(kind.type_url for kind in KINDS)
FULL_STATE = frozenset(kind.type_url for kind in KINDS if kind.full_state)


def short_name(type_url: str) -> str:
    """CDS, EDS, ... for known kinds; any other type URL as it is (as istioctl prints them)."""
    kind = BY_TYPE_URL.get(type_url)
    return kind.short if kind else type_url


_RANKS = {type_url: rank for rank, type_url in enumerate(PUSH_ORDER)}


def push_rank(type_url: str) -> tuple[int, str]:
    """Sort key putting type URLs in push order, unknown ones last (by URL)."""
    return (_RANKS.get(type_url, len(KINDS)), type_url)


def section_name(type_url: str) -> str:
    """The admin config-dump section a kind's resources appear in (`envoy.admin.v3.ClustersConfigDump`)."""
    kind = BY_TYPE_URL[type_url]
    if kind.dump is None:
        raise LookupError(f"{kind.short} resources do not appear in an Envoy config dump")
    return kind.dump.section


def admin_class(name: str) -> Any:
    """The class of an admin config-dump message (`envoy.admin.v3.RoutesConfigDump`), imported on
    first use: the admin protos pull in the whole bootstrap tree."""
    from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2

    short = name.rsplit(".", 1)[-1]
    return getattr(config_dump_shared_pb2, short, None) or getattr(config_dump_pb2, short)
