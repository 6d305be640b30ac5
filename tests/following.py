"""Clients that follow a SnapshotCache as Envoy does, holding what they were sent, without gRPC.

serve pushes a proxy only what changed for it, and only when something its resources depend on
changed: a missing dependency shows as a client left holding stale resources. These clients
subscribe as Envoy does (CDS and LDS wildcard, then the EDS and RDS names those responses name),
apply every response (SotW: complete CDS/LDS, EDS/RDS by name; Delta: updates and removals), ACK
it, and say what they hold, to be compared with a cold translation.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.service.discovery.v3 import discovery_pb2

from meshctl.resources import BY_TYPE_URL, CLUSTER, ENDPOINT, FULL_STATE, LISTENER, ROUTE
from meshctl.xds.cache import SnapshotCache
from meshctl.xds.stream import DeltaStream, Push, SotwStream, Stream

DEPENDENT = {CLUSTER: ENDPOINT, LISTENER: ROUTE}


def dependent_names(type_url: str, values: list[bytes]) -> list[str]:
    """The EDS names of clusters, or the RDS names of listeners, as Envoy would ask for them."""
    names: set[str] = set()
    for value in values:
        if type_url == CLUSTER:
            cluster = cluster_pb2.Cluster.FromString(value)
            if cluster.type == cluster_pb2.Cluster.EDS:
                names.add(cluster.eds_cluster_config.service_name or cluster.name)
            continue
        listener = listener_pb2.Listener.FromString(value)
        for chain in [*listener.filter_chains, listener.default_filter_chain]:
            for item in chain.filters:
                if item.typed_config.type_url.endswith("HttpConnectionManager"):
                    manager = hcm_pb2.HttpConnectionManager.FromString(item.typed_config.value)
                    if manager.HasField("rds"):
                        names.add(manager.rds.route_config_name)
    return sorted(names)


class Follower:
    """One proxy's stream on `cache` (SotW or Delta) and what its client holds, by type and name."""

    def __init__(self, cache: SnapshotCache, node: base_pb2.Node, *, delta: bool = False) -> None:
        self.delta = delta
        self.stream: Stream = (DeltaStream if delta else SotwStream)(cache, node)
        self.held: dict[str, dict[str, bytes]] = {t: {} for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE)}
        self.subscribed: dict[str, list[str]] = {ENDPOINT: [], ROUTE: []}
        self.pushed: list[str] = []
        """The type of every response received, in order."""

    def start(self) -> None:
        for type_url in (CLUSTER, LISTENER):
            self._follow(self.stream.on_request(self._request(type_url, [], first=type_url == CLUSTER)))

    def wake(self) -> None:
        """A new generation was published: take what the stream pushes."""
        self._follow(self.stream.on_config())

    def _request(self, type_url: str, names: list[str], *, first: bool = False, nonce: str = "",
                 version: str = "", unsubscribe: list[str] | None = None) -> discovery_pb2.DiscoveryRequest:
        if self.delta:
            request = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, response_nonce=nonce,
                                                          resource_names_subscribe=names,
                                                          resource_names_unsubscribe=unsubscribe or [])
        else:
            request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=names, response_nonce=nonce,
                                                     version_info=version)
        if first:
            request.node.CopyFrom(self.stream.node)
        return request

    def _follow(self, pushes: list[Push]) -> None:
        while pushes:
            push = pushes.pop(0)
            self.pushed.append(push.type_url)
            pushes.extend(self._apply(push))

    def _apply(self, push: Push) -> list[Push]:
        """Hold what the response brings, subscribe to what it names, ACK it."""
        held = self.held[push.type_url]
        if self.delta:
            response = discovery_pb2.DeltaDiscoveryResponse.FromString(push.payload)
            for resource in response.resources:
                if push.type_url in FULL_STATE or resource.name in self.subscribed[push.type_url]:
                    held[resource.name] = resource.resource.value
            for name in response.removed_resources:
                held.pop(name, None)
        else:
            sotw = discovery_pb2.DiscoveryResponse.FromString(push.payload)
            values = {_name(push.type_url, any_.value): any_.value for any_ in sotw.resources}
            if push.type_url in FULL_STATE:
                held.clear()
            else:  # Envoy takes only the endpoints and routes it asked for
                values = {name: value for name, value in values.items() if name in self.subscribed[push.type_url]}
            held.update(values)
        out: list[Push] = []
        dependent = DEPENDENT.get(push.type_url)
        if dependent is not None:
            names = dependent_names(push.type_url, list(held.values()))
            if names != self.subscribed[dependent]:
                gone = sorted(set(self.subscribed[dependent]) - set(names))
                self.subscribed[dependent] = names
                for name in gone:
                    self.held[dependent].pop(name, None)
                if self.delta:
                    new = sorted(set(names) - set(self.held[dependent]))
                    out.extend(self.stream.on_request(self._request(dependent, new, unsubscribe=gone)))
                else:
                    out.extend(self.stream.on_request(self._request(dependent, names)))
        if self.delta:
            ack = self._request(push.type_url, [], nonce=response.nonce)
        else:
            ack = self._request(push.type_url, self.subscribed.get(push.type_url, []), nonce=sotw.nonce,
                                version=sotw.version_info)
        out.extend(self.stream.on_request(ack))
        return out


def _name(type_url: str, value: bytes) -> str:
    kind = BY_TYPE_URL[type_url]
    return kind.name_of(kind.message_class().FromString(value))
