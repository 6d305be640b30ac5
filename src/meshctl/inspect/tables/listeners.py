"""`proxy-config listeners`: istioctl's listener summary (`configdump/listener.go`), padding 1.

One row per filter chain (the default filter chain last), describing its match and where its
first HTTP connection manager or TCP proxy sends traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError

from meshctl.inspect.configdump import ConfigDump
from meshctl.inspect.gosort import sort_slice
from meshctl.inspect.gostd import equal_fold
from meshctl.inspect.tables.matches import describe_match
from meshctl.inspect.tabwriter import tabulate

__all__ = [
    "ChainRow",
    "HTTP_CONNECTION_MANAGER",
    "ListenerFilter",
    "TCP_PROXY",
    "chain_rows",
    "filter_chains",
    "listener_address",
    "listener_port",
    "listener_type",
    "listeners_table",
]

HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
_BLACKHOLE = b"BlackHoleCluster"
# What istioctl prints (Go's protobuf error) when a filter's config is not the message its name says.
_UNPARSABLE = "proto: cannot parse invalid wire-format data"

# Fixed ALPN lists Istio puts in filter chain matches, and the words istioctl shows for them.
_ALPN_ALIASES = {
    ("http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "App: HTTP TLS",
    ("istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "App: Istio HTTP Plain",
    ("istio-peer-exchange", "istio"): "App: TCP TLS",
    ("http/1.0", "http/1.1", "h2c"): "App: HTTP",
}


@dataclass(frozen=True)
class ListenerFilter:
    """Exact, case-insensitive address (additional addresses count), exact port, type name."""

    address: str = ""
    port: int = 0
    type: str = ""
    verbose: bool = True

    def matches(self, listener: Any) -> bool:
        if self.address and not any(equal_fold(address, self.address) for address in _all_addresses(listener)):
            return False
        if self.port and listener_port(listener) != self.port:
            return False
        return not self.type or equal_fold(listener_type(listener), self.type)


class ChainRow(NamedTuple):
    match: str
    destination: str


def listeners_table(dump: ConfigDump, listener_filter: ListenerFilter, prefixed: bool = False) -> str:
    """ADDRESSES / PORT / MATCH / DESTINATION (verbose, the default) or ADDRESSES / PORT / TYPE.

    Listeners are ordered by (port, address, type); the rows of one listener by destination,
    descending. `prefixed` adds the NAME column (`listener/<name>`) of `proxy-config all`.
    """
    listeners = [listener for listener in dump.listeners() if listener_filter.matches(listener)]
    sort_slice(listeners, _listener_less)
    header = "ADDRESSES\tPORT\t" + ("MATCH\tDESTINATION" if listener_filter.verbose else "TYPE")
    lines = [("NAME\t" if prefixed else "") + header + "\n"]
    for listener in listeners:
        lead = f"listener/{listener.name}\t" if prefixed else ""
        addresses = ",".join([listener_address(listener), *_additional_addresses(listener)])
        port = listener_port(listener)
        if not listener_filter.verbose:
            lines.append(f"{lead}{addresses}\t{port}\t{listener_type(listener)}\n")
            continue
        rows = chain_rows(listener)
        sort_slice(rows, lambda left, right: left.destination > right.destination)
        lines.extend(f"{lead}{addresses}\t{port}\t{row.match}\t{row.destination}\n" for row in rows)
    return tabulate("".join(lines), padding=1)


def listener_address(listener: Any) -> str:
    """The socket address, or the pipe path; empty for internal listeners."""
    kind = listener.address.WhichOneof("address")
    if kind == "socket_address":
        return listener.address.socket_address.address
    if kind == "pipe":
        return listener.address.pipe.path
    return ""


def listener_port(listener: Any) -> int:
    return listener.address.socket_address.port_value


def listener_type(listener: Any) -> str:
    """HTTP, TCP, HTTP+TCP or UNKNOWN, counting HCM and (non-blackhole) TCP proxy filters."""
    http = tcp = 0
    for chain in filter_chains(listener):
        for network_filter in chain.filters:
            if network_filter.name == HTTP_CONNECTION_MANAGER:
                http += 1
            elif network_filter.name == TCP_PROXY and _BLACKHOLE not in network_filter.typed_config.value:
                tcp += 1
    if http:
        return "HTTP+TCP" if tcp else "HTTP"
    return "TCP" if tcp else "UNKNOWN"


def filter_chains(listener: Any) -> list[Any]:
    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    return chains


def chain_rows(listener: Any) -> list[ChainRow]:
    return [
        ChainRow(_describe_chain_match(chain), _describe_destination(chain.filters))
        for chain in filter_chains(listener)
    ]


def _all_addresses(listener: Any) -> list[str]:
    return [*_additional_addresses(listener), listener_address(listener)]


def _additional_addresses(listener: Any) -> list[str]:
    return [extra.address.socket_address.address for extra in listener.additional_addresses]


def _listener_less(left: Any, right: Any) -> bool:
    if listener_port(left) != listener_port(right):
        return listener_port(left) < listener_port(right)
    if listener_address(left) != listener_address(right):
        return listener_address(left) < listener_address(right)
    return listener_type(left) < listener_type(right)


def _describe_chain_match(chain: Any) -> str:
    """`SNI: ..; Trans: ..; App: ..; Addr: ..`, or `ALL` when the chain matches everything.

    Source ranges, source types and address suffixes are not shown, as in istioctl.
    """
    match = chain.filter_chain_match
    parts = []
    if match.server_names:
        parts.append("SNI: " + ",".join(match.server_names))
    if match.transport_protocol:
        parts.append(f"Trans: {match.transport_protocol}")
    if match.application_protocols:
        protocols = tuple(match.application_protocols)
        parts.append(_ALPN_ALIASES.get(protocols, "App: " + ",".join(protocols)))
    port = f":{match.destination_port.value}" if match.HasField("destination_port") else ""
    if match.prefix_ranges:
        ranges = ",".join(f"{cidr.address_prefix}/{cidr.prefix_len.value}" for cidr in match.prefix_ranges)
        parts.append(f"Addr: {ranges}{port}")
    elif port:
        parts.append(f"Addr: *{port}")
    return "; ".join(parts) or "ALL"


def _describe_destination(filters: Any) -> str:
    from envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2 import (
        HttpConnectionManager,
    )
    from envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2 import TcpProxy

    for network_filter in filters:
        if network_filter.name == HTTP_CONNECTION_MANAGER:
            try:
                manager = HttpConnectionManager.FromString(network_filter.typed_config.value)
            except DecodeError:
                return _UNPARSABLE
            if manager.HasField("route_config"):
                return _describe_inline_routes(manager.route_config)
            if manager.rds.route_config_name:
                return f"Route: {manager.rds.route_config_name}"
            return "HTTP"
        if network_filter.name == TCP_PROXY and _BLACKHOLE not in network_filter.typed_config.value:
            try:
                return _describe_cluster(TcpProxy.FromString(network_filter.typed_config.value).cluster)
            except DecodeError:
                return _UNPARSABLE
    return "Non-HTTP/Non-TCP"


def _describe_cluster(cluster: str) -> str:
    """Special clusters (PassthroughCluster, BlackHoleCluster, ...) print bare."""
    return cluster if "Cluster" in cluster else f"Cluster: {cluster}"


def _describe_inline_routes(route_config: Any) -> str:
    hosts = route_config.virtual_hosts
    if len(hosts) == 1 and list(hosts[0].domains) == ["*"] and len(hosts[0].routes) == 1:
        only = hosts[0].routes[0]
        if (
            only.match.prefix == "/"
            and only.WhichOneof("action") == "route"
            and only.route.WhichOneof("cluster_specifier") == "cluster"
        ):
            return _describe_cluster(only.route.cluster)
    described = []
    for host in hosts:
        routes = ", ".join(describe_match(route.match) for route in host.routes)
        domains = "" if list(host.domains) == ["*"] else "/".join(host.domains)
        described.append(f"{domains} {routes}" if domains else routes)
    return "Inline Route: " + "; ".join(described)
