"""Outbound filter chains: what a chain matches on (ALPN, SNI, destination prefixes) and its
filters, and the Envoy FilterChain made of it. Listeners merge these chains per (bind, port);
VirtualService TLS and TCP routes make them."""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.listener.v3 import listener_components_pb2 as lc


@dataclass(slots=True)
class OutboundChain:
    """One outbound filter chain: its match (SNI, prefix ranges, ALPN) and filters."""

    filters: list[lc.Filter]
    alpn: list[str] = field(default_factory=list)
    server_names: list[str] = field(default_factory=list)
    prefix_ranges: list[str] = field(default_factory=list)
    http: bool = False

    @property
    def matches_all(self) -> bool:
        return not (self.alpn or self.server_names or self.prefix_ranges)

    def key(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        return (tuple(self.server_names), tuple(self.prefix_ranges), tuple(self.alpn))


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
        prefix.prefix_len.value = _prefix_len(address, length)
    if chain.matches_all:
        out.ClearField("filter_chain_match")
    out.filters.extend(chain.filters)
    out.transport_socket_connect_timeout.seconds = connect_timeout_seconds
    return out


def _prefix_len(address: str, length: str) -> int:
    if length:
        return int(length)
    return 128 if ":" in address else 32
