"""Both sides of a sync comparison as normalised JSON data, resource by resource.

istioctl compares the control plane's config for a proxy with the proxy's `/config_dump` after
normalising both (see `compare`). The same normalisation is applied here to plain JSON data in
Envoy's own form: Envoy's dump is read with `json.loads`, the control plane's binary answer is
converted by `envoyjson`. That is fast enough for a thousand clusters, and it is what the
equality check and the semantic diff work on; only a real difference sends `compare` to the
exact protobuf rendering istioctl prints.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import re
from collections.abc import Callable
from typing import Any

from meshctl.errors import MeshctlError
from google.protobuf import descriptor_pool

from meshctl.inspect.configdump import (
    ConfigDump,
    binary_pool,
    config_dump_document,
    document_pool,
    known_type,
    parse_config_dump,
    reduce_anys,
    type_names,
)
from meshctl.resources import CLUSTER, LISTENER, ROUTE, TYPE_PREFIX, admin_class, section_name
from meshctl.status.envoyjson import EnvoyJson, Unconvertible

__all__ = [
    "CLUSTERS",
    "ControlPlaneDump",
    "Entries",
    "EnvoyDump",
    "KINDS",
    "LISTENERS",
    "ROUTES",
    "SECTION_TYPES",
    "Side",
    "entry_name",
]

CLUSTERS = "Clusters"
LISTENERS = "Listeners"
ROUTES = "Routes"
KINDS = (CLUSTERS, LISTENERS, ROUTES)
SECTION_TYPES = {CLUSTERS: section_name(CLUSTER), LISTENERS: section_name(LISTENER), ROUTES: section_name(ROUTE)}
# The message of one entry of each section (nested in the section's message).
_ENTRY_TYPES = {CLUSTERS: "DynamicCluster", LISTENERS: "DynamicListener", ROUTES: "DynamicRouteConfig"}

Entries = list[dict[str, Any]]
_TYPE_FIELD = re.compile(rb'"@type"\s*:\s*"([^"\\]*)"')


class Side(abc.ABC):
    """One side of a comparison: its entries per kind, computed once, and its protobuf form.

    `entries` raises MeshctlError when the dump has no section of that kind, and
    envoyjson.Unconvertible when a section holds a type this process cannot show as Envoy does.
    """

    def __init__(self) -> None:
        self._entries: dict[str, Entries | Exception] = {}

    @property
    @abc.abstractmethod
    def parsed(self) -> ConfigDump:
        """The dump as protobuf, for the exact comparison."""

    def entries(self, kind: str) -> Entries:
        if kind not in self._entries:
            try:
                self._entries[kind] = _NORMALISERS[kind](self.section(SECTION_TYPES[kind]))
            except (MeshctlError, Unconvertible) as exc:
                self._entries[kind] = exc
        found = self._entries[kind]
        if isinstance(found, Exception):
            raise found
        return found

    @abc.abstractmethod
    def section(self, type_name: str) -> dict[str, Any]:
        """The last section of that type (istioctl's pick) as JSON data with Envoy's field
        names; MeshctlError if there is none."""

    @property
    @abc.abstractmethod
    def pool(self) -> descriptor_pool.DescriptorPool:
        """Resolves every `Any` of the dump."""

    def typed(self, kind: str, entry: dict[str, Any]) -> Any:
        """An entry as its protobuf type reads it, written back in Envoy's spelling: `100` and
        `100.0` in a double field, `"5"` and `5` in an int64, `"1.000s"` and `"1s"`, an enum by
        number or by name, a null and an absent field all come out the same. Presence stays
        protobuf's: a message set to its zero value (`timeout: 0s`) is not an absent one.
        Data protobuf cannot read is returned as it is."""
        from google.protobuf import json_format

        message = getattr(admin_class(SECTION_TYPES[kind]), _ENTRY_TYPES[kind])()
        try:
            json_format.ParseDict(entry, message, ignore_unknown_fields=True, descriptor_pool=self.pool)
            return self._converter.data(message)
        except (json_format.ParseError, Unconvertible, ValueError, TypeError):
            return entry

    @functools.cached_property
    def _converter(self) -> EnvoyJson:
        return EnvoyJson(self.pool)


class EnvoyDump(Side):
    """Envoy's `/config_dump` as fetched: read as JSON at once, parsed into protobuf on demand.

    An `Any` of a type this process does not know is reduced to its `@type`, which is all the
    control plane side can show of it too (and all the protobuf parse keeps of it).
    """

    def __init__(self, data: bytes, origin: str) -> None:
        super().__init__()
        self.data = data
        self.origin = origin
        self.document = config_dump_document(data, origin)
        # The dump's own section types (envoy.admin.*) are not looked up: they hold what is
        # compared, and importing them all would cost more than the rest of the check. Envoy's
        # JSON is scanned as bytes, which is fast; a dump saved as YAML is walked.
        if data.lstrip()[:1] == b"{":
            names = {url.decode().rsplit("/", 1)[-1] for url in _TYPE_FIELD.findall(data)}
        else:
            names = set(type_names(self.document))
        unknown = {name for name in names if not name.startswith("envoy.admin.") and not known_type(name)}
        if unknown:
            reduce_anys(self.document, unknown, keep_type=True)

    @functools.cached_property
    def parsed(self) -> ConfigDump:
        """The dump as protobuf (slow for big dumps: only an exact comparison needs it)."""
        return parse_config_dump(self.data, self.origin)

    @functools.cached_property
    def pool(self) -> descriptor_pool.DescriptorPool:
        return document_pool(self.document)

    def section(self, type_name: str) -> dict[str, Any]:
        """Envoy's own section; from a dump written by protojson instead (`lowerCamelCase`
        names, as `istioctl ... -o json` and `meshctl translate -o json` print), the section as
        read through protobuf, which takes both spellings."""
        wanted = TYPE_PREFIX + type_name
        found = [s for s in self.document["configs"] if isinstance(s, dict) and s.get("@type") == wanted]
        if not found:
            raise MeshctlError(f"config dump has no configuration type {wanted}")
        if not any(key[:1].islower() and not key.islower() for key in found[-1] if key != "@type"):
            return found[-1]
        parsed = self.parsed
        [*_, section] = (config for config in parsed.message.configs if config.type_url == wanted)
        return EnvoyJson(parsed.pool).data(section)


class ControlPlaneDump(Side):
    """A control plane's `istio.io/debug/config_dump` answer for one proxy: its resources are the
    sections of an Envoy admin ConfigDump, converted to Envoy's JSON form for comparing."""

    def __init__(self, response: Any) -> None:
        super().__init__()
        self.sections = list(response.resources)
        self._pool = binary_pool(response)

    @property
    def pool(self) -> descriptor_pool.DescriptorPool:
        return self._pool

    @functools.cached_property
    def parsed(self) -> ConfigDump:
        from envoy.admin.v3.config_dump_pb2 import ConfigDump as ConfigDumpMessage

        message = ConfigDumpMessage()
        message.configs.extend(self.sections)
        return ConfigDump(message, self.pool)

    def prepare(self) -> None:
        """Compute every kind's entries now, for instance while Envoy's dump is being fetched
        (a failure is kept and raised again when those entries are asked for)."""
        for kind in KINDS:
            with contextlib.suppress(MeshctlError, Unconvertible):
                self.entries(kind)

    def section(self, type_name: str) -> dict[str, Any]:
        wanted = TYPE_PREFIX + type_name
        found = [section for section in self.sections if section.type_url == wanted]
        if not found:
            raise MeshctlError(f"config dump has no configuration type {wanted}")
        return EnvoyJson(self.pool).data(found[-1])


def entry_name(kind: str, entry: dict[str, Any]) -> str:
    """The name of the resource an entry holds (cluster, listener or route configuration)."""
    return str(_NAME_OF[kind](entry))


def _without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in keys}


def _cluster_name(entry: dict[str, Any]) -> Any:
    return entry.get("cluster", {}).get("name", "")


def _listener_name(entry: dict[str, Any]) -> Any:
    return entry.get("active_state", {}).get("listener", {}).get("name", "")


def _route_name(entry: dict[str, Any]) -> Any:
    return entry.get("route_config", {}).get("name", "")


def _clusters(section: dict[str, Any]) -> Entries:
    entries = [_without(entry, "version_info", "last_updated") for entry in section.get("dynamic_active_clusters", [])]
    return sorted(entries, key=_cluster_name)


def _listeners(section: dict[str, Any]) -> Entries:
    entries = []
    for entry in section.get("dynamic_listeners", []):
        if "active_state" not in entry:
            continue
        normalised = _without(entry, "draining_state", "name")
        normalised["active_state"] = _without(entry["active_state"], "version_info", "last_updated")
        entries.append(normalised)
    return sorted(entries, key=_listener_name)


def _routes(section: dict[str, Any]) -> Entries:
    entries = []
    for entry in section.get("dynamic_route_configs", []):
        normalised = _without(entry, "version_info", "last_updated")
        config = dict(entry.get("route_config", {}))
        if "virtual_hosts" in config:
            config["virtual_hosts"] = sorted(config["virtual_hosts"], key=lambda host: host.get("name", ""))
        normalised["route_config"] = config
        entries.append(normalised)
    return sorted(entries, key=_route_name)


_NORMALISERS: dict[str, Callable[[dict[str, Any]], Entries]] = {
    CLUSTERS: _clusters,
    LISTENERS: _listeners,
    ROUTES: _routes,
}
_NAME_OF: dict[str, Callable[[dict[str, Any]], Any]] = {
    CLUSTERS: _cluster_name,
    LISTENERS: _listener_name,
    ROUTES: _route_name,
}
