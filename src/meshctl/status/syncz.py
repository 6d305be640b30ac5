"""Sync status as control planes report it: `istio.io/debug/syncz` answers, read into rows.

Each answer is a DiscoveryResponse whose resources are CSDS `ClientConfig`s, one per connected
proxy, with one entry per xDS type the proxy subscribed to (status, time of the last push, and
the NACK after a rejection). Older istiods use the legacy per-type `xds_config` list instead;
both are read. The control plane names itself in `control_plane.identifier` (istiod's JSON:
`{"Component": ..., "ID": <pod>, ...}`), which becomes the ISTIOD column.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from envoy.service.status.v3 import csds_pb2

from meshctl.resources import CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE, type_url_of

__all__ = [
    "CLIENT_CONFIG",
    "LEADING_TYPES",
    "ProxySync",
    "SYNCED",
    "TypeStatus",
    "UNKNOWN",
    "VERBOSE_TYPES",
    "answers_in",
    "control_plane_id",
    "read_syncz",
    "select",
]

CLIENT_CONFIG = type_url_of(csds_pb2.ClientConfig)
# Types listed first in SUBSCRIBED TYPES, in this order; the rest follow sorted by URL.
LEADING_TYPES = (CLUSTER, LISTENER, ENDPOINT, ROUTE)
# Columns `-v 1` always shows, whether or not any proxy subscribed to them.
VERBOSE_TYPES = (*LEADING_TYPES, EXTENSION_CONFIG)

SYNCED = "SYNCED"
UNKNOWN = "UNKNOWN"
_LEGACY_TYPES = {
    "listener_config": LISTENER,
    "cluster_config": CLUSTER,
    "route_config": ROUTE,
    "endpoint_config": ENDPOINT,
}


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """One xDS type of one proxy: the CSDS status name, when it was last pushed, the NACK text."""

    type_url: str
    status: str
    last_updated: datetime | None = None
    error: str = ""

    @property
    def subscribed(self) -> bool:
        """istioctl shows UNKNOWN as IGNORED: the proxy never asked for this type."""
        return self.status != UNKNOWN


@dataclass(frozen=True, slots=True)
class ProxySync:
    """One row of proxy-status: a proxy as one control plane sees it."""

    proxy_id: str
    cluster_id: str
    namespace: str
    istio_version: str
    istiod: str
    types: tuple[TypeStatus, ...]

    def type_status(self, type_url: str) -> TypeStatus | None:
        return next((t for t in self.types if t.type_url == type_url), None)

    @property
    def subscribed(self) -> list[TypeStatus]:
        """Subscribed types, CDS, LDS, EDS, RDS first and then the others by type URL."""
        return sorted((t for t in self.types if t.subscribed), key=lambda t: _type_rank(t.type_url))

    @property
    def synced(self) -> bool:
        """Every subscribed type acknowledged in its latest version (and at least one type)."""
        subscribed = self.subscribed
        return bool(subscribed) and all(t.status == SYNCED for t in subscribed)


def control_plane_id(response: Any, fallback: str) -> str:
    """The control plane's own name (istiod's pod name) from `control_plane.identifier`."""
    try:
        identifier = json.loads(response.control_plane.identifier or "{}")
    except ValueError:
        return fallback
    name = identifier.get("ID") if isinstance(identifier, dict) else None
    return str(name) if name else fallback


def read_syncz(answers: Mapping[str, Any]) -> list[ProxySync]:
    """Every proxy in every control plane's syncz answer (keyed by how the plane was reached),
    sorted by proxy id as istioctl prints them."""
    rows = []
    for source, response in answers.items():
        istiod = control_plane_id(response, source)
        for resource in response.resources:
            if resource.type_url == CLIENT_CONFIG:
                rows.append(_proxy_sync(_client_config(resource), istiod))
    return sorted(rows, key=lambda row: row.proxy_id)


def answers_in(answers: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The syncz answers keeping only the proxies of one namespace (`-n` with `-o json|yaml`):
    those whose NAMESPACE metadata, or else the `.NS` of their `POD.NS` id, is `namespace`."""
    filtered = {}
    for source, response in answers.items():
        copy = type(response)()
        copy.CopyFrom(response)
        del copy.resources[:]
        kept = [r for r in response.resources if r.type_url != CLIENT_CONFIG or _namespace(_client_config(r)) == namespace]
        copy.resources.extend(kept)
        filtered[source] = copy
    return filtered


def select(rows: Iterable[ProxySync], namespace: str | None = None, proxy_id: str | None = None) -> list[ProxySync]:
    """Rows of one namespace and/or one proxy."""
    return [row for row in rows if namespace in (None, row.namespace) and proxy_id in (None, row.proxy_id)]


def _type_rank(type_url: str) -> tuple[int, str]:
    leading = LEADING_TYPES.index(type_url) if type_url in LEADING_TYPES else len(LEADING_TYPES)
    return leading, type_url


def _client_config(resource: Any) -> Any:
    config = csds_pb2.ClientConfig()
    resource.Unpack(config)
    return config


def _proxy_sync(config: Any, istiod: str) -> ProxySync:
    metadata = config.node.metadata.fields
    return ProxySync(
        proxy_id=config.node.id,
        cluster_id=_text(metadata, "CLUSTER_ID"),
        namespace=_namespace(config),
        istio_version=_text(metadata, "ISTIO_VERSION"),
        istiod=istiod,
        types=tuple(_type_statuses(config)),
    )


def _type_statuses(config: Any) -> Iterable[TypeStatus]:
    if config.generic_xds_configs:
        for item in config.generic_xds_configs:
            last = _time(item.last_updated) if item.HasField("last_updated") else None
            error = item.error_state.details if item.HasField("error_state") else ""
            yield TypeStatus(item.type_url, csds_pb2.ConfigStatus.Name(item.config_status), last, error)
        return
    for item in config.xds_config:
        kind = item.WhichOneof("per_xds_config")
        if kind in _LEGACY_TYPES:
            yield TypeStatus(_LEGACY_TYPES[kind], csds_pb2.ConfigStatus.Name(item.status))


def _namespace(config: Any) -> str:
    namespace = _text(config.node.metadata.fields, "NAMESPACE")
    if namespace:
        return namespace
    return config.node.id.rpartition(".")[2] if "." in config.node.id else ""


def _text(fields: Any, key: str) -> str:
    return fields[key].string_value if key in fields else ""


def _time(stamp: Any) -> datetime:
    return datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, UTC)
