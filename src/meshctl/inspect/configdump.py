"""Envoy admin JSON (`/config_dump`, `/clusters?format=json`) parsed into xds-protos messages.

Envoy writes snake_case JSON; istiod's debug endpoints and protojson write camelCase. Both parse,
because protobuf's JSON parser accepts a field's proto name and its JSON name alike.

Unknown `@type`s. `google.protobuf.json_format` needs a message class for every `Any`, and real
sidecar dumps carry types xds-protos does not have (`stats.PluginConfig`, `istio.*`, types newer
than the installed xds-protos). istioctl keeps going on those; so do we:

1. We collect every `@type` in the document first. For each we look for the message in the
   default descriptor pool, importing the xds-protos modules of its proto package on demand.
2. The `Any` payloads are parsed through a private descriptor pool holding copies of those
   files, plus one empty message per type that was not found. An unknown `Any` therefore keeps
   its type URL (the ECDS table prints it) and its payload is dropped: it parses as an empty
   message, with its fields ignored like any other unknown field.
3. A type name that is not even a valid proto name cannot be declared; such an `Any` is emptied
   in the JSON before parsing (type URL and payload both dropped).

The private pool stays with the parsed dump (`ConfigDump.pool`): JSON output needs it to print
the placeholder `Any`s (as `{"@type": ...}`) instead of failing on them. The default pool is
never changed, apart from importing xds-protos modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import pkgutil
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf.message import Message

from meshctl.errors import BadInputError, MeshctlError
from meshctl.resources import (
    CLUSTER,
    ENDPOINT,
    EXTENSION_CONFIG,
    LISTENER,
    ROUTE,
    SECRET,
    TYPE_PREFIX,
    admin_class,
    section_name,
)

if TYPE_CHECKING:
    from envoy.admin.v3.config_dump_pb2 import ConfigDump as ConfigDumpMessage

__all__ = [
    "BOOTSTRAP",
    "CLUSTERS",
    "ConfigDump",
    "ECDS",
    "ENDPOINTS",
    "LISTENERS",
    "M",
    "ROUTES",
    "SECRETS",
    "binary_pool",
    "config_dump_document",
    "document_pool",
    "known_type",
    "parse_cluster_answers",
    "parse_clusters",
    "parse_config_dump",
    "parse_document_as",
    "reduce_anys",
    "type_names",
]

BOOTSTRAP = "envoy.admin.v3.BootstrapConfigDump"
CLUSTERS = section_name(CLUSTER)
LISTENERS = section_name(LISTENER)
ROUTES = section_name(ROUTE)
SECRETS = section_name(SECRET)
ENDPOINTS = section_name(ENDPOINT)
ECDS = section_name(EXTENSION_CONFIG)

# Top-level Python packages under which xds-protos and protobuf install generated modules; the
# on-demand import never looks anywhere else, so a type URL cannot make us import arbitrary code.
_PROTO_ROOTS = frozenset({"envoy", "xds", "udpa", "validate", "google", "cel", "opencensus", "opentelemetry"})
_searched_packages: set[str] = set()
# The cluster lists of a ClustersConfigDump, as Envoy writes them and in protojson's spelling.
_CLUSTER_LISTS = (
    "static_clusters", "dynamic_active_clusters", "dynamic_warming_clusters",
    "staticClusters", "dynamicActiveClusters", "dynamicWarmingClusters",
)  # fmt: skip
_BINARY_PREFIX = TYPE_PREFIX.encode()
M = TypeVar("M", bound=Message)
_BINARY_TYPE_URL = re.compile(re.escape(_BINARY_PREFIX) + rb"[A-Za-z_][A-Za-z0-9_.]*")


@dataclass(frozen=True)
class ConfigDump:
    """A parsed `/config_dump` and the descriptor pool that resolves every `Any` inside it."""

    message: ConfigDumpMessage
    pool: descriptor_pool.DescriptorPool

    def section(self, type_name: str) -> Any:
        """The last section of that type (istioctl's rule), unpacked into its xds-protos class."""
        found = [config for config in self.message.configs if config.type_url == TYPE_PREFIX + type_name]
        if not found:
            raise MeshctlError(f"config dump has no configuration type {TYPE_PREFIX}{type_name}")
        return _unpack(found[-1], admin_class(type_name))

    def has_section(self, type_name: str) -> bool:
        return any(config.type_url == TYPE_PREFIX + type_name for config in self.message.configs)

    def listed(self, type_name: str) -> Any:
        """A section that lists resources, empty when the dump has none: Envoy leaves a section
        out of its dump when it holds nothing of that kind (no ECDS, no routes without HTTP)."""
        return self.section(type_name) if self.has_section(type_name) else admin_class(type_name)()

    def bootstrap(self) -> Any:
        return self.section(BOOTSTRAP)

    def clusters(self) -> list[Any]:
        """Active dynamic clusters, then static ones; warming clusters are not shown, as in istioctl."""
        from envoy.config.cluster.v3.cluster_pb2 import Cluster

        dump = self.listed(CLUSTERS)
        wrapped = [*dump.dynamic_active_clusters, *dump.static_clusters]
        return [_unpack(item.cluster, Cluster) for item in wrapped if item.HasField("cluster")]

    def listeners(self) -> list[Any]:
        """Dynamic listeners with an active state, then static ones."""
        from envoy.config.listener.v3.listener_pb2 import Listener

        dump = self.listed(LISTENERS)
        dynamic = [
            item.active_state.listener
            for item in dump.dynamic_listeners
            if item.HasField("active_state") and item.active_state.HasField("listener")
        ]
        static = [item.listener for item in dump.static_listeners if item.HasField("listener")]
        return [_unpack(listener, Listener) for listener in (*dynamic, *static)]

    def route_configs(self) -> list[Any]:
        """Dynamic route configurations, then static ones (inline routes of static listeners)."""
        from envoy.config.route.v3.route_pb2 import RouteConfiguration

        dump = self.listed(ROUTES)
        wrapped = [*dump.dynamic_route_configs, *dump.static_route_configs]
        return [_unpack(item.route_config, RouteConfiguration) for item in wrapped if item.HasField("route_config")]

    def endpoint_configs(self) -> list[Any]:
        """Dynamic, then static ClusterLoadAssignments; only dumps taken with `include_eds` have
        them, so a dump without the section is read as having none (see `has_section`)."""
        from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment

        dump = self.listed(ENDPOINTS)
        wrapped = [*dump.dynamic_endpoint_configs, *dump.static_endpoint_configs]
        return [_unpack(item.endpoint_config, ClusterLoadAssignment) for item in wrapped]

    def secrets(self) -> Any:
        return self.listed(SECRETS)

    def ecds(self) -> Any:
        """All ECDS sections merged into one: Envoy writes one section per extension config type."""
        merged = admin_class(ECDS)()
        for config in self.message.configs:
            if config.type_url == TYPE_PREFIX + ECDS:
                merged.ecds_filters.extend(_unpack(config, type(merged)).ecds_filters)
        return merged


def parse_config_dump(data: bytes, origin: str, *, cluster_fields: Collection[str] | None = None) -> ConfigDump:
    """Parse `/config_dump` JSON text. `origin` names the input in error messages.

    `cluster_fields` keeps only those fields of each cluster: a summary that reads three of a
    cluster's dozens parses a thousand Istio clusters in a tenth of the time.
    """
    document = config_dump_document(data, origin)
    if cluster_fields is not None:
        _trim_clusters(document, frozenset(cluster_fields))
    return _config_dump(document, origin)


def parse_cluster_answers(answers: Mapping[str, bytes], origin: str) -> ConfigDump:
    """Envoy's answers to `/config_dump?resource=LIST&mask=...`, keyed by LIST
    (`static_clusters`, `dynamic_active_clusters`), as the one clusters section a full dump holds.

    A resource query answers with the list's entries each wrapped as an `Any`, and Envoy applies
    the mask inside every cluster: a table that reads three fields of a thousand clusters gets a
    sixth of the bytes and Envoy spends a third less time writing them.
    """
    section: dict[str, Any] = {"@type": TYPE_PREFIX + CLUSTERS}
    for key, data in answers.items():
        entries = _load_json(data, origin).get("configs", [])  # none at all: Envoy answers {}
        if not isinstance(entries, list):
            raise BadInputError([f'{origin}: the answer for {key} is not an Envoy /config_dump (no "configs" list)'])
        section[key] = [{k: v for k, v in entry.items() if k != "@type"} for entry in entries if isinstance(entry, dict)]
    return _config_dump({"configs": [section]}, origin)


def parse_document_as(document: dict[str, Any], message_class: type[M], origin: str) -> M:
    """One resource of a dump's JSON (a listener, a cluster...) as a message of `message_class`,
    its `Any`s resolved as a whole dump's are: for readers that need a few resources of a big
    dump, which would be slow to parse whole."""
    body = {key: value for key, value in document.items() if key != "@type"}
    message = message_class()
    _parse_into(body, message, document_pool(body), origin)
    return message


def _config_dump(document: dict[str, Any], origin: str) -> ConfigDump:
    from envoy.admin.v3.config_dump_pb2 import ConfigDump as ConfigDumpMessage

    pool = document_pool(document)
    message = ConfigDumpMessage()
    _parse_into(document, message, pool, origin)
    return ConfigDump(message=message, pool=pool)


def _trim_clusters(document: dict[str, Any], fields: frozenset[str]) -> None:
    for section in document["configs"]:
        if not isinstance(section, dict) or section.get("@type") != TYPE_PREFIX + CLUSTERS:
            continue
        for key in _CLUSTER_LISTS:
            for entry in section.get(key) or []:
                cluster = entry.get("cluster") if isinstance(entry, dict) else None
                if isinstance(cluster, dict):
                    entry["cluster"] = {k: v for k, v in cluster.items() if k == "@type" or k in fields}


def config_dump_document(data: bytes, origin: str) -> dict[str, Any]:
    """`/config_dump` JSON text as plain JSON data, checked to be a config dump.

    For readers that need only a few fields of a big dump, which `json_format` would be slow
    to turn into messages.
    """
    document = _load_json(data, origin)
    if "configs" not in document:
        hint = ""
        if "cluster_statuses" in document or "clusterStatuses" in document:
            hint = "; it looks like /clusters?format=json, which `proxy-config endpoints` reads"
        raise BadInputError([f'{origin}: not an Envoy /config_dump (no "configs" field){hint}'])
    return document


def parse_clusters(data: bytes, origin: str) -> Any:
    """Parse Envoy's `/clusters?format=json` into `envoy.admin.v3.Clusters`."""
    from envoy.admin.v3.clusters_pb2 import Clusters

    document = _load_json(data, origin)
    if "configs" in document:
        raise BadInputError(
            [
                f"{origin}: this is a /config_dump; `proxy-config endpoints` reads Envoy's "
                "/clusters?format=json (use `proxy-config eds` for the endpoints in a config dump)"
            ]
        )
    message = Clusters()
    _parse_into(document, message, document_pool(document), origin)
    return message


def binary_pool(message: Message) -> descriptor_pool.DescriptorPool:
    """A private pool resolving every `Any` inside a message received in binary.

    For answers that arrive as protobuf rather than JSON (a control plane's
    `istio.io/debug/config_dump` or syncz over ADS), where the types cannot be read from
    `@type` keys. Nested `Any`s are embedded byte for byte in the outer encoding, so every type
    URL shows up in the serialized bytes, right after its length; the length says where the
    URL ends (the next field's tag may well be a letter). A string that merely looks like a
    type URL only adds an unused type to the pool.
    """
    builder = _PoolBuilder()
    for name in _binarytype_names(message.SerializeToString()):
        builder.provide(name)
    return builder.pool


def _binarytype_names(data: bytes) -> set[str]:
    names = set()
    for match in _BINARY_TYPE_URL.finditer(data):
        url = match.group(0)
        length = data[match.start() - 1] if match.start() else 0
        if len(_BINARY_PREFIX) < length <= len(url):
            url = url[:length]
        names.add(url[len(_BINARY_PREFIX) :].decode())
    return names


def _load_json(data: bytes, origin: str) -> dict[str, Any]:
    """The admin document, as Envoy writes it (JSON) or as `-o yaml` prints it."""
    try:
        document = json.loads(data)
    except UnicodeDecodeError as exc:
        raise BadInputError([f"{origin}: not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
    except json.JSONDecodeError as exc:
        document = _yaml_mapping(data, origin)
        if document is None:
            raise BadInputError([f"{origin}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]) from None
    if not isinstance(document, dict):
        raise BadInputError([f"{origin}: expected a JSON object, found {type(document).__name__}"])
    return document


def _yaml_mapping(data: bytes, origin: str) -> dict[str, Any] | None:
    """A YAML document holding one mapping (a dump saved from `-o yaml`), read the way input
    files are (timestamps stay text, as JSON has them); None for anything else, such as text
    that was meant to be JSON."""
    from meshctl.config.documents import decode, parse_text

    text, problem = decode(data, origin)
    if text is None or problem is not None or text.lstrip()[:1] in ("{", "["):
        return None
    documents, problems = parse_text(text, origin)
    if problems or len(documents) != 1 or not isinstance(documents[0].value, dict):
        return None
    mapping: dict[str, Any] = documents[0].value
    return mapping


def _parse_into(document: dict[str, Any], message: Message, pool: descriptor_pool.DescriptorPool, origin: str) -> None:
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True, descriptor_pool=pool)
    except json_format.ParseError as exc:
        raise BadInputError([f"{origin}: not a valid Envoy admin document: {exc}"]) from None


def _unpack(value: Any, message_class: type) -> Any:
    """Read an Any's payload as `message_class`, whatever its type URL says (istioctl does the
    same, which also lets it read payloads tagged with older API versions)."""
    message = message_class()
    message.ParseFromString(value.value)
    return message


def type_names(node: Any) -> Iterator[str]:
    """Every message name named by an `@type` anywhere in the JSON tree."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            type_url = item.get("@type")
            if isinstance(type_url, str):
                yield type_url.rsplit("/", 1)[-1]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def document_pool(document: dict[str, Any]) -> descriptor_pool.DescriptorPool:
    """A pool with every type the document names: real ones copied, unknown ones as empty messages.

    Names that cannot be declared are emptied out of `document` (see the module docstring).
    """
    builder = _PoolBuilder()
    undeclarable = {name for name in set(type_names(document)) if not builder.provide(name)}
    if undeclarable:
        reduce_anys(document, undeclarable)
    return builder.pool


class _PoolBuilder:
    def __init__(self) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        self._files: set[str] = set()

    def provide(self, name: str) -> bool:
        """Make `name` resolvable in the private pool; False when it cannot be declared."""
        descriptor = _find_message(name)
        if descriptor is not None:
            self._add_file(descriptor.file)
            return True
        return self._declare_opaque(name)

    def _add_file(self, file: Any) -> None:
        if file.name in self._files:
            return
        for dependency in file.dependencies:
            self._add_file(dependency)
        self.pool.AddSerializedFile(file.serialized_pb)
        self._files.add(file.name)

    def _declare_opaque(self, name: str) -> bool:
        package, _, short = name.rpartition(".")
        proto = descriptor_pb2.FileDescriptorProto(
            name=f"meshctl/opaque/{name}.proto", package=package, syntax="proto3"
        )
        proto.message_type.add(name=short)
        try:
            self.pool.Add(proto)
        except (TypeError, ValueError):
            return False
        self._files.add(proto.name)
        return True


def known_type(name: str) -> bool:
    """Whether a message type (full name) is one this process can read, importing xds-protos
    modules as needed; `Any`s of other types are parsed as empty placeholders."""
    return _find_message(name) is not None


def _find_message(name: str) -> Any:
    """The message descriptor from the default pool, importing xds-protos modules as needed."""
    default = descriptor_pool.Default()
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            return default.FindMessageTypeByName(name)
        except KeyError:
            _import_package(".".join(parts[:cut]))
    try:
        return default.FindMessageTypeByName(name)
    except KeyError:
        return None


def _import_package(package: str) -> None:
    """Import every generated `_pb2` module of a proto package, once per process."""
    if package in _searched_packages or package.split(".")[0] not in _PROTO_ROOTS:
        return
    _searched_packages.add(package)
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    for module in pkgutil.iter_modules(spec.submodule_search_locations):
        if module.name.endswith("_pb2"):
            try:
                importlib.import_module(f"{package}.{module.name}")
            except (ImportError, TypeError, ValueError):
                continue


def reduce_anys(node: Any, names: set[str], keep_type: bool = False) -> None:
    """Empty, in place, every `Any` in a JSON document whose type name is in `names` (keeping
    its `@type` when `keep_type`): what cannot be decoded is left out rather than guessed at."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            type_url = item.get("@type")
            if isinstance(type_url, str) and type_url.rsplit("/", 1)[-1] in names:
                for key in [key for key in item if not (keep_type and key == "@type")]:
                    del item[key]
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
