"""Outbound filter chains: what a chain matches on (ALPN, SNI, destination prefixes) and its
filters, and the Envoy FilterChain made of it. Listeners merge these chains per (bind, port);
VirtualService TLS and TCP routes make them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from envoy.config.listener.v3 import listener_components_pb2 as lc

__all__ = ["OutboundChain", "distinct_networks", "filter_chain"]


@dataclass(slots=True)
class OutboundChain:
    """One outbound filter chain: its match (SNI, prefix ranges, ALPN) and filters."""

    filters: list[lc.Filter]
    alpn: list[str] = field(default_factory=list)
    server_names: list[str] = field(default_factory=list)
    prefix_ranges: list[str] = field(default_factory=list)
    http: bool = False

    def __post_init__(self) -> None:
        self.prefix_ranges = list(distinct_networks(self.prefix_ranges).values())

    @property
    def matches_all(self) -> bool:
        return not (self.alpn or self.server_names or self.prefix_ranges)

    def key(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """What the chain matches, ranges compared as networks."""
        return (tuple(self.server_names), tuple(distinct_networks(self.prefix_ranges)), tuple(self.alpn))


def distinct_networks(cidrs: Iterable[str]) -> dict[str, str]:
    """Each network (`10.1.2.0/24`) of `cidrs` once, with the first spelling that named it
    (`10.1.2.3/24`; a bare address is a /32 or /128). Envoy compares prefix ranges by network,
    so chains whose ranges differ only in host bits overlap and the whole listener is refused;
    compared this way, the later chain is dropped as a duplicate. Istio writes each range as
    the user spelled it, and so does meshctl."""
    seen: dict[str, str] = {}
    for cidr in cidrs:
        seen.setdefault(str(ipaddress.ip_network(cidr, strict=False)), cidr)
    return seen


def filter_chain(chain: OutboundChain, connect_timeout_seconds: int) -> lc.FilterChain:
    """An outbound chain as Envoy takes it; a chain matching everything has no match at all."""
    out = lc.FilterChain()
    match = out.filter_chain_match
    if chain.alpn:
        match.transport_protocol = "raw_buffer"
        match.application_protocols.extend(chain.alpn)
    if chain.server_names:
        match.server_names.extend(sorted(chain.server_names))
    for cidr in chain.prefix_ranges:
        address, _, length = cidr.partition("/")
        prefix = match.prefix_ranges.add(address_prefix=address)
        prefix.prefix_len.value = int(length) if length else (128 if ":" in address else 32)
    if chain.matches_all:
        out.ClearField("filter_chain_match")
    out.filters.extend(chain.filters)
    out.transport_socket_connect_timeout.seconds = connect_timeout_seconds
    return out
