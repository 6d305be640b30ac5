"""The config of the proxy being explained, as Envoy protos, whatever it comes from.

`explain` asks for listeners, one route configuration, one cluster, one endpoint assignment:
the few resources a request touches. A translation (`meshctl translate`'s output) holds them as
messages already. A dump holds JSON: it is read once, and only the resources asked for are
parsed into messages, which keeps a thousand-service dump fast. A live Envoy is asked for each
resource by name (`/config_dump?resource=...&name_regex=...`), so it sends only those; and as
Envoy builds every section of its dump for each `/config_dump` question, whatever it is asked,
it is asked as few: the listeners' two lists in one question, its node from `/server_info`.

A resource can be missing for two reasons that must not be confused: the proxy does not have
it (a route configuration nobody sent: Envoy rejects the request), or the source does not say
(a dump taken without `include_eds` holds no endpoints). `Lookup` keeps them apart.
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf.message import Message

from meshctl.errors import MeshctlError
from meshctl.inspect.adminpaths import LISTENERS_PATH, SERVER_INFO_PATH, by_name
from meshctl.inspect.configdump import config_dump_document, parse_document_as
from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, TYPE_PREFIX, section_name

if TYPE_CHECKING:
    from meshctl.generate.proxy import ProxyConfig, ProxyParts
    from meshctl.inspect.acquire import DumpSource

__all__ = ["DumpView", "Identity", "ListenerInfo", "Lookup", "PartsView", "ProxyView", "TranslatedView", "live_view"]

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class Lookup(Generic[M]):
    """A resource by name: `found`, or None with `known` saying whether the source would have
    held it (missing) or cannot say (`why`)."""

    found: M | None
    known: bool = True
    why: str = ""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the proxy is, as far as the source tells: for short host names (its namespace and
    DNS domain) and inbound calls (its own address)."""

    name: str
    namespace: str = ""
    ip: str = ""
    dns_domain: str = ""


@dataclass(frozen=True, slots=True)
class ListenerInfo:
    """What listener selection needs of a listener, readable without parsing it."""

    name: str
    addresses: tuple[tuple[str, int], ...]
    use_original_dst: bool = False
    inbound: bool = False
    bind_to_port: bool = True


class ProxyView(abc.ABC):
    """The resources of one proxy, looked up by name."""

    identity: Identity

    @abc.abstractmethod
    def listener_infos(self) -> Sequence[ListenerInfo]:
        """Every active listener, in the order the proxy holds them."""

    @abc.abstractmethod
    def listener(self, name: str) -> listener_pb2.Listener:
        """A listener named by `listener_infos`."""

    @abc.abstractmethod
    def route_configuration(self, name: str, hosts: Sequence[str] = ()) -> Lookup[route_pb2.RouteConfiguration]:
        """A route configuration; given `hosts`, a view may leave out virtual hosts that match
        none of them."""

    @abc.abstractmethod
    def cluster(self, name: str) -> Lookup[cluster_pb2.Cluster]: ...

    @abc.abstractmethod
    def load_assignment(self, name: str) -> Lookup[endpoint_pb2.ClusterLoadAssignment]: ...

    def warnings(self) -> list[str]:
        """What a translation had to say about the config looked up so far."""
        return []


def _info(listener: listener_pb2.Listener) -> ListenerInfo:
    addresses = [listener.address, *(extra.address for extra in listener.additional_addresses)]
    return ListenerInfo(
        name=listener.name,
        addresses=tuple(
            (a.socket_address.address, a.socket_address.port_value) for a in addresses if a.HasField("socket_address")
        ),
        use_original_dst=listener.use_original_dst.value,
        inbound=listener.traffic_direction == 1,  # envoy.config.core.v3.TrafficDirection.INBOUND
        bind_to_port=not listener.HasField("bind_to_port") or listener.bind_to_port.value,
    )


class TranslatedView(ProxyView):
    """What `meshctl translate` renders for a proxy: every resource is there, endpoints too."""

    def __init__(self, config: ProxyConfig, identity: Identity) -> None:
        self.identity = identity
        self._listeners = {listener.name: listener for listener in config.listeners}
        self._routes = {route.name: route for route in config.routes}
        self._clusters = {cluster.name: cluster for cluster in config.clusters}
        self._endpoints = {cla.cluster_name: cla for cla in config.endpoints}
        self._warnings = list(config.warnings)

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def listener_infos(self) -> Sequence[ListenerInfo]:
        return [_info(listener) for listener in self._listeners.values()]

    def listener(self, name: str) -> listener_pb2.Listener:
        return self._listeners[name]

    def route_configuration(self, name: str, hosts: Sequence[str] = ()) -> Lookup[route_pb2.RouteConfiguration]:
        return Lookup(self._routes.get(name))

    def cluster(self, name: str) -> Lookup[cluster_pb2.Cluster]:
        return Lookup(self._clusters.get(name))

    def load_assignment(self, name: str) -> Lookup[endpoint_pb2.ClusterLoadAssignment]:
        return Lookup(self._endpoints.get(name))


class PartsView(ProxyView):
    """A sidecar's translation, built a resource at a time as the request reaches it: the same
    answers as a `TranslatedView` of the whole translation, without translating the thousand
    clusters and endpoints the request never touches."""

    def __init__(self, parts: ProxyParts, identity: Identity) -> None:
        self.identity = identity
        self._parts = parts
        self._listeners: dict[str, listener_pb2.Listener] | None = None
        self._routes: dict[str, route_pb2.RouteConfiguration | None] = {}

    def _all_listeners(self) -> dict[str, listener_pb2.Listener]:
        if self._listeners is None:
            self._listeners = {listener.name: listener for listener in self._parts.listeners()}
        return self._listeners

    def listener_infos(self) -> Sequence[ListenerInfo]:
        return [_info(listener) for listener in self._all_listeners().values()]

    def listener(self, name: str) -> listener_pb2.Listener:
        return self._all_listeners()[name]

    def route_configuration(self, name: str, hosts: Sequence[str] = ()) -> Lookup[route_pb2.RouteConfiguration]:
        if name not in self._routes:
            self._routes[name] = self._parts.route_configuration(name)
        return Lookup(self._routes[name])

    def cluster(self, name: str) -> Lookup[cluster_pb2.Cluster]:
        return Lookup(self._parts.cluster(name))

    def load_assignment(self, name: str) -> Lookup[endpoint_pb2.ClusterLoadAssignment]:
        return Lookup(self._parts.load_assignment(name))

    def warnings(self) -> list[str]:
        return self._parts.warnings


# Keys of a config dump's JSON, in Envoy's spelling and protojson's (`istioctl -o json`).
def _get(entry: Mapping[str, Any], key: str) -> Any:
    if key in entry:
        return entry[key]
    head, *rest = key.split("_")
    return entry.get(head + "".join(part.title() for part in rest))


_LISTENERS = section_name(LISTENER)
_ROUTES = section_name(ROUTE)
_CLUSTERS = section_name(CLUSTER)
_ENDPOINTS = section_name(ENDPOINT)


@dataclass(frozen=True, slots=True)
class _Kind:
    """Where a resource kind sits in a dump: its section, lists, wrapper key and name key."""

    section: str
    lists: tuple[str, ...]
    wrapper: str
    key: str
    type_name: str
    what: str


_ROUTE_KIND = _Kind(_ROUTES, ("dynamic_route_configs", "static_route_configs"), "route_config", "name",
                    "envoy.config.route.v3.RouteConfiguration", "routes")
_CLUSTER_KIND = _Kind(_CLUSTERS, ("dynamic_active_clusters", "static_clusters"), "cluster", "name",
                      "envoy.config.cluster.v3.Cluster", "clusters")
_ENDPOINT_KIND = _Kind(_ENDPOINTS, ("dynamic_endpoint_configs", "static_endpoint_configs"), "endpoint_config",
                       "cluster_name", "envoy.config.endpoint.v3.ClusterLoadAssignment",
                       "endpoints (a dump holds them only when taken with ?include_eds)")
_NO_SECTION = object()


class Store(abc.ABC):
    """The JSON of a dump: lists of a section, and one resource by name."""

    @abc.abstractmethod
    def entries(self, section: str, list_name: str) -> list[dict[str, Any]] | None:
        """Every entry of one list of a section; None when the source has no such section."""

    def find(self, kind: _Kind, name: str) -> dict[str, Any] | None | object:
        """The resource named `name` (its JSON, unwrapped), None if absent, or `_NO_SECTION`."""
        seen = False
        for list_name in kind.lists:
            entries = self.entries(kind.section, list_name)
            if entries is None:
                continue
            seen = True
            for entry in entries:
                inner = _get(entry, kind.wrapper)
                if isinstance(inner, dict) and _get(inner, kind.key) == name:
                    return inner
        return None if seen else _NO_SECTION


_SECTION_TYPE = re.compile(r'"@type"\s*:\s*"type\.googleapis\.com/(envoy\.admin\.v3\.\w+)"')
_LEADING_TYPE = re.compile(r'\s*("@type"\s*:\s*"[^"\\]*"\s*,\s*)?$')


class TextStore(Store):
    """A saved dump's text, parsed section by section, and resource by resource when it can be.

    A thousand-service dump is tens of megabytes; a request needs a handful of its resources.
    Sections are located by their `@type` and decoded only when asked for. A resource asked for
    by name is first looked for in its section's text (the name is the first field after
    `@type`, in Envoy's output and protojson's alike) and only that object is decoded; when the
    text does not show it so plainly, the whole section is decoded and searched instead.
    """

    def __init__(self, data: bytes, origin: str) -> None:
        from meshctl.errors import BadInputError

        try:
            self._text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadInputError([f"{origin}: not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
        self._origin = origin
        self._decoder = json.JSONDecoder()
        self._spans: dict[str, tuple[int, int]] = {}
        self._sections: dict[str, dict[str, Any]] = {}
        starts = []
        for match in _SECTION_TYPE.finditer(self._text):
            opening = self._text.rfind("{", 0, match.start())
            if opening >= 0 and not self._text[opening + 1:match.start()].strip():
                starts.append((opening, match.group(1)))
        if not starts:
            config_dump_document(data, origin)  # the reason it is not a dump, as proxy-config words it
        for index, (opening, type_name) in enumerate(starts):
            end = starts[index + 1][0] if index + 1 < len(starts) else len(self._text)
            self._spans[type_name] = (opening, end)

    def section(self, type_name: str) -> dict[str, Any] | None:
        if type_name not in self._spans:
            return None
        if type_name not in self._sections:
            self._sections[type_name] = self._decode(self._spans[type_name][0])
        return self._sections[type_name]

    def _decode(self, position: int) -> dict[str, Any]:
        from meshctl.errors import BadInputError

        try:
            found, _ = self._decoder.raw_decode(self._text, position)
        except json.JSONDecodeError as exc:
            raise BadInputError([f"{self._origin}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]) from None
        if not isinstance(found, dict):
            raise BadInputError([f"{self._origin}: not an Envoy /config_dump (a section is not an object)"])
        return found

    def entries(self, section: str, list_name: str) -> list[dict[str, Any]] | None:
        found = self.section(section)
        if found is None:
            return None
        entries = _get(found, list_name)
        return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []

    def find(self, kind: _Kind, name: str) -> dict[str, Any] | None | object:
        span = self._spans.get(kind.section)
        if span is None:
            return _NO_SECTION
        if kind.section not in self._sections:
            pattern = re.compile(r'"' + re.escape(kind.key) + r'"\s*:\s*' + re.escape(json.dumps(name)))
            for match in pattern.finditer(self._text, span[0], span[1]):
                opening = self._text.rfind("{", span[0], match.start())
                if opening < 0 or not _LEADING_TYPE.fullmatch(self._text, opening + 1, match.start()):
                    continue
                candidate = self._decode(opening)
                if candidate.get(kind.key) == name and str(candidate.get("@type", "")).endswith(kind.type_name):
                    return candidate
        return super().find(kind, name)


class LiveStore(Store):
    """A running Envoy, asked for one resource by name at a time, and for the listeners' lists
    together (one question: Envoy builds its whole dump for each, 15 ms at a thousand services)."""

    def __init__(self, source: DumpSource) -> None:
        self._source = source
        self._listed: dict[str, Any] | None = None

    def _ask(self, list_name: str, section: str, name: str | None) -> list[dict[str, Any]]:
        path = by_name(list_name, name, include_eds=section == _ENDPOINTS)
        data = self._source.get(path)
        try:
            answer = json.loads(data)
        except ValueError as exc:
            raise MeshctlError(f"{self._source.name}: /{path} is not JSON: {exc}") from None
        # An answer with no entries at all is `{}`, without a configs list.
        entries = answer.get("configs", []) if isinstance(answer, dict) else []
        return [entry for entry in entries if isinstance(entry, dict)]

    def entries(self, section: str, list_name: str) -> list[dict[str, Any]] | None:
        if section != _LISTENERS:
            return self._ask(list_name, section, None)
        if self._listed is None:
            self._listed = self._listeners()
        entries = _get(self._listed, list_name)
        return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []

    def _listeners(self) -> dict[str, Any]:
        """The listeners section with both its lists (empty when Envoy holds no listener)."""
        from meshctl.inspect.acquire import masked_dump

        data = masked_dump(self._source, LISTENERS_PATH)
        sections = [s for s in config_dump_document(data, self._source.name).get("configs", []) if isinstance(s, dict)]
        return sections[0] if sections else {}

    def find(self, kind: _Kind, name: str) -> dict[str, Any] | None | object:
        for list_name in kind.lists:
            for entry in self._ask(list_name, kind.section, name):
                inner = _get(entry, kind.wrapper)
                if isinstance(inner, dict) and _get(inner, kind.key) == name:
                    return inner
        return None


class DumpView(ProxyView):
    """A config dump (Envoy's `/config_dump`, or `translate -o json`) read through a `Store`:
    only the resources asked for are turned into messages."""

    def __init__(self, store: Store, origin: str, identity: Identity) -> None:
        self._store = store
        self.origin = origin
        self.identity = identity
        self._listener_json: dict[str, dict[str, Any]] | None = None
        self._parsed: dict[tuple[str, str], Any] = {}

    def _listeners(self) -> dict[str, dict[str, Any]]:
        if self._listener_json is None:
            found: dict[str, dict[str, Any]] = {}
            dynamic = self._store.entries(_LISTENERS, "dynamic_listeners")
            static = self._store.entries(_LISTENERS, "static_listeners")
            if dynamic is None and static is None:
                raise MeshctlError(f"{self.origin}: the config dump has no listeners section ({TYPE_PREFIX}{_LISTENERS})")
            for entry in dynamic or []:
                listener = _get(_get(entry, "active_state") or {}, "listener")
                if isinstance(listener, dict):
                    found.setdefault(str(listener.get("name", "")), listener)
            for entry in static or []:
                listener = _get(entry, "listener")
                if isinstance(listener, dict):
                    found.setdefault(str(listener.get("name", "")), listener)
            self._listener_json = found
        return self._listener_json

    def listener_infos(self) -> Sequence[ListenerInfo]:
        return [_json_info(name, data) for name, data in self._listeners().items()]

    def listener(self, name: str) -> listener_pb2.Listener:
        return self._parse(("listener", name), self._listeners()[name], listener_pb2.Listener)

    def route_configuration(self, name: str, hosts: Sequence[str] = ()) -> Lookup[route_pb2.RouteConfiguration]:
        """With `hosts`, virtual hosts none of whose domains match any of them are left out
        before parsing: they could not be chosen, and a thousand of them parse slowly."""

        def narrow(data: dict[str, Any]) -> dict[str, Any]:
            if not hosts:
                return data
            from meshctl.explain.routing import domain_matches

            vhosts = _get(data, "virtual_hosts") or []
            kept = [v for v in vhosts if any(domain_matches(str(d), h) for d in v.get("domains", []) for h in hosts)]
            return {**{k: v for k, v in data.items() if k not in ("virtual_hosts", "virtualHosts")}, "virtual_hosts": kept}

        return self._lookup(_ROUTE_KIND, name, route_pb2.RouteConfiguration, narrow, tuple(hosts))

    def cluster(self, name: str) -> Lookup[cluster_pb2.Cluster]:
        return self._lookup(_CLUSTER_KIND, name, cluster_pb2.Cluster)

    def load_assignment(self, name: str) -> Lookup[endpoint_pb2.ClusterLoadAssignment]:
        return self._lookup(_ENDPOINT_KIND, name, endpoint_pb2.ClusterLoadAssignment)

    def _lookup(self, kind: _Kind, name: str, cls: type[M],
                narrow: Callable[[dict[str, Any]], dict[str, Any]] | None = None, variant: tuple[str, ...] = ()) -> Lookup[M]:
        key = (kind.section, name + "\0" + "\0".join(variant))
        if key in self._parsed:
            return Lookup(self._parsed[key])
        found = self._store.find(kind, name)
        if found is _NO_SECTION:
            return Lookup(None, known=False, why=f"{self.origin} holds no {kind.what}")
        if not isinstance(found, dict):
            return Lookup(None)
        return Lookup(self._parse(key, narrow(found) if narrow else found, cls))

    def _parse(self, key: tuple[str, str], data: dict[str, Any], cls: type[M]) -> M:
        found = self._parsed.get(key)
        if found is None:
            found = self._parsed[key] = parse_document_as(data, cls, self.origin)
        return cast(M, found)


def _json_info(name: str, data: Mapping[str, Any]) -> ListenerInfo:
    addresses = []
    for address in [data.get("address") or {}, *[_get(a, "address") or {} for a in _get(data, "additional_addresses") or []]]:
        socket = _get(address, "socket_address") or {}
        if socket:
            addresses.append((str(socket.get("address", "")), int(_get(socket, "port_value") or 0)))
    original = _get(data, "use_original_dst")
    bind = _get(data, "bind_to_port")
    return ListenerInfo(
        name=name,
        addresses=tuple(addresses),
        use_original_dst=bool(original.get("value", original) if isinstance(original, dict) else original),
        inbound=_get(data, "traffic_direction") == "INBOUND",
        bind_to_port=bind is None or bool(bind.get("value", bind) if isinstance(bind, dict) else bind),
    )


def document_view(data: bytes, origin: str, identity: Identity | None = None) -> DumpView:
    """A saved `/config_dump` (or `translate -o json`) as a view; the proxy's identity comes from
    its bootstrap section when it has one."""
    store = TextStore(data, origin)
    bootstrap = store.section("envoy.admin.v3.BootstrapConfigDump")
    return DumpView(store, origin, identity or _identity(bootstrap, origin))


def live_view(source: DumpSource, identity: Identity | None = None) -> DumpView:
    """A live Envoy, asked for each resource as it is needed. Its node (the bootstrap's) comes
    from `/server_info`, which Envoy answers without building its config dump."""
    if identity is None:
        try:
            info = json.loads(source.get(SERVER_INFO_PATH))
        except ValueError as exc:
            raise MeshctlError(f"{source.name}: /{SERVER_INFO_PATH} is not JSON: {exc}") from None
        node = info.get("node") if isinstance(info, dict) else None
        identity = _identity({"bootstrap": {"node": node if isinstance(node, dict) else {}}}, source.name)
    return DumpView(LiveStore(source), source.name, identity)


def _identity(bootstrap: Mapping[str, Any] | None, origin: str) -> Identity:
    """Namespace, address and DNS domain from the node of a dump's bootstrap (Istio node id
    `sidecar~IP~POD.NS~NS.svc.cluster.local` and node metadata), where there is one."""
    node = _get(_get(bootstrap or {}, "bootstrap") or {}, "node") or {}
    node_id = str(node.get("id", ""))
    metadata = node.get("metadata") or {}
    parts = node_id.split("~")
    name = parts[2] if len(parts) == 4 else node_id or origin
    ip = parts[1] if len(parts) == 4 else ""
    ips = str(metadata.get("INSTANCE_IPS", "")).split(",")
    namespace = str(metadata.get("NAMESPACE") or (name.rsplit(".", 1)[1] if "." in name else ""))
    return Identity(
        name=name,
        namespace=namespace,
        ip=ip or ips[0],
        dns_domain=parts[3] if len(parts) == 4 else (f"{namespace}.svc.cluster.local" if namespace else ""),
    )
