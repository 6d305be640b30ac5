"""The config of the proxy being explained, as Envoy protos, whatever it comes from.

`explain` asks for listeners, one route configuration, one cluster, one endpoint assignment:
the few resources a request touches. A translation (`meshctl translate`'s output) holds them as
messages already. A dump holds JSON: it is read once, and only the resources asked for are
parsed into messages, which keeps a thousand-service dump fast. A live Envoy is asked for each
resource by name (`/config_dump?resource=...&name_regex=...`), so it sends only those.

A resource can be missing for two reasons that must not be confused: the proxy does not have
it (a route configuration nobody sent: Envoy rejects the request), or the source does not say
(a dump taken without `include_eds` holds no endpoints). `Lookup` keeps them apart.
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from meshctl.errors import MeshctlError
from meshctl.inspect.configdump import config_dump_document, parse_document_as
from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, TYPE_PREFIX, section_name

if TYPE_CHECKING:
    from meshctl.generate.proxy import ProxyConfig
    from meshctl.inspect.acquire import DumpSource

__all__ = ["DumpView", "Identity", "ListenerInfo", "Lookup", "ProxyView", "TranslatedView", "live_view"]

M = TypeVar("M")


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
    def route_configuration(self, name: str) -> Lookup[route_pb2.RouteConfiguration]: ...

    @abc.abstractmethod
    def cluster(self, name: str) -> Lookup[cluster_pb2.Cluster]: ...

    @abc.abstractmethod
    def load_assignment(self, name: str) -> Lookup[endpoint_pb2.ClusterLoadAssignment]: ...


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

    def listener_infos(self) -> Sequence[ListenerInfo]:
        return [_info(listener) for listener in self._listeners.values()]

    def listener(self, name: str) -> listener_pb2.Listener:
        return self._listeners[name]

    def route_configuration(self, name: str) -> Lookup[route_pb2.RouteConfiguration]:
        return Lookup(self._routes.get(name))

    def cluster(self, name: str) -> Lookup[cluster_pb2.Cluster]:
        return Lookup(self._clusters.get(name))

    def load_assignment(self, name: str) -> Lookup[endpoint_pb2.ClusterLoadAssignment]:
        return Lookup(self._endpoints.get(name))


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


class DumpView(ProxyView):
    """A config dump's JSON (Envoy's `/config_dump`, or `translate -o json`), parsed on demand.

    `fetch(section, list_name, name)` gives the entries of one list of a dump section (`None`:
    the source has no such section), all of them or, given a name, at least those of that
    name: a whole document answers from memory, a live Envoy by a narrow query.
    """

    def __init__(self, fetch: Callable[[str, str, str | None], list[dict[str, Any]] | None], origin: str,
                 identity: Identity) -> None:
        self._fetch = fetch
        self.origin = origin
        self.identity = identity
        self._listener_json: dict[str, dict[str, Any]] | None = None
        self._parsed: dict[tuple[str, str], Any] = {}

    def _listeners(self) -> dict[str, dict[str, Any]]:
        if self._listener_json is None:
            found: dict[str, dict[str, Any]] = {}
            dynamic = self._fetch(_LISTENERS, "dynamic_listeners", None)
            static = self._fetch(_LISTENERS, "static_listeners", None)
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

    def route_configuration(self, name: str) -> Lookup[route_pb2.RouteConfiguration]:
        return self._lookup(_ROUTES, ("dynamic_route_configs", "static_route_configs"), "route_config", "name", name,
                            route_pb2.RouteConfiguration, "routes")

    def cluster(self, name: str) -> Lookup[cluster_pb2.Cluster]:
        return self._lookup(_CLUSTERS, ("dynamic_active_clusters", "static_clusters"), "cluster", "name", name,
                            cluster_pb2.Cluster, "clusters")

    def load_assignment(self, name: str) -> Lookup[endpoint_pb2.ClusterLoadAssignment]:
        return self._lookup(_ENDPOINTS, ("dynamic_endpoint_configs", "static_endpoint_configs"), "endpoint_config",
                            "cluster_name", name, endpoint_pb2.ClusterLoadAssignment,
                            "endpoints (a dump holds them only when taken with ?include_eds)")

    def _lookup(self, section: str, lists: Iterable[str], wrapper: str, key: str, name: str, cls: type[M],
                what: str) -> Lookup[M]:
        cached = self._parsed.get((section, name))
        if cached is not None:
            return Lookup(cached)
        seen_section = False
        for list_name in lists:
            entries = self._fetch(section, list_name, name)
            if entries is None:
                continue
            seen_section = True
            for entry in entries:
                inner = _get(entry, wrapper)
                if isinstance(inner, dict) and _get(inner, key) == name:
                    return Lookup(self._parse((section, name), inner, cls))
        if not seen_section:
            return Lookup(None, known=False, why=f"{self.origin} holds no {what}")
        return Lookup(None)

    def _parse(self, key: tuple[str, str], data: dict[str, Any], cls: type[M]) -> M:
        found = self._parsed.get(key)
        if found is None:
            found = self._parsed[key] = parse_document_as(data, cls, self.origin)
        return found


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
    document = config_dump_document(data, origin)
    sections: dict[str, dict[str, Any]] = {}
    for section in document.get("configs", []):
        if isinstance(section, dict):
            sections[str(section.get("@type", "")).removeprefix(TYPE_PREFIX)] = section

    def fetch(section: str, list_name: str, name: str | None) -> list[dict[str, Any]] | None:
        found = sections.get(section)
        if found is None:
            return None
        entries = _get(found, list_name)
        return entries if isinstance(entries, list) else []

    bootstrap = sections.get("envoy.admin.v3.BootstrapConfigDump")
    return DumpView(fetch, origin, identity or _identity(bootstrap, origin))


def live_view(source: DumpSource, identity: Identity | None = None) -> DumpView:
    """A live Envoy, asked for each resource as it is needed."""

    def fetch(section: str, list_name: str, name: str | None) -> list[dict[str, Any]] | None:
        path = f"config_dump?resource={list_name}"
        if section == _ENDPOINTS:
            path += "&include_eds"
        if name is not None:
            path += "&name_regex=" + _url_regex(name)
        answer = json.loads(source.get(path))
        return [entry for entry in answer.get("configs", []) if isinstance(entry, dict)]

    if identity is None:
        bootstrap = json.loads(source.get("config_dump?mask=bootstrap"))
        sections = [s for s in bootstrap.get("configs", []) if isinstance(s, dict)]
        identity = _identity(sections[0] if sections else None, source.name)
    return DumpView(fetch, source.name, identity)


def _url_regex(name: str) -> str:
    import urllib.parse

    return urllib.parse.quote("^" + re.escape(name) + "$", safe="")


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
