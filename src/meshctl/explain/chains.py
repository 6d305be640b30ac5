"""Listener filters and filter chain matching, in Envoy's order.

Listener filters decide what the chain match sees: `tls_inspector` reads the SNI and ALPN of a
TLS ClientHello (without it, every connection is `raw_buffer` with neither), `http_inspector`
reports `http/1.1` or `h2c` for plaintext HTTP. A filter's `filter_disabled` predicate (a port
range, typically) turns it off for some destinations, as on Istio's virtualInbound.

Envoy then narrows the filter chains criterion by criterion: destination port, destination IP
(longest prefix), server name (exact, then the longest wildcard), transport protocol,
application protocol, direct source IP, source type, source IP, source port. At each criterion
the chains that name the connection's value win; only if none does, the chains that leave the
criterion empty go on. Envoy never backtracks: once a criterion picked chains, a later criterion
that rejects them all leaves no match, even if a less specific chain would have matched. No
match falls to `default_filter_chain`, else the connection is closed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshctl.explain.matchers import cidr_contains
from meshctl.explain.protos import HTTP_INSPECTOR, TLS_INSPECTOR, type_name
from meshctl.explain.request import Request, Transport

__all__ = ["ChainChoice", "Connection", "chain_label", "describe_match", "inspect", "select_chain"]

_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True, slots=True)
class Connection:
    """What the chain match knows about a connection once the listener filters ran."""

    dst_ip: str
    dst_port: int
    src_ip: str
    src_port: int
    server_name: str = ""
    transport_protocol: str = "raw_buffer"
    alpn: tuple[str, ...] = ()


def _filter_enabled(listener_filter: Any, port: int) -> bool:
    if not listener_filter.HasField("filter_disabled"):
        return True
    return not _predicate(listener_filter.filter_disabled, port)


def _predicate(predicate: Any, port: int) -> bool:
    which = predicate.WhichOneof("rule")
    if which == "any_match":
        return bool(predicate.any_match)
    if which == "destination_port_range":
        return int(predicate.destination_port_range.start) <= port < int(predicate.destination_port_range.end)
    if which == "not_match":
        return not _predicate(predicate.not_match, port)
    if which == "or_match":
        return any(_predicate(rule, port) for rule in predicate.or_match.rules)
    if which == "and_match":
        return all(_predicate(rule, port) for rule in predicate.and_match.rules)
    return False


def _listener_filter_type(listener_filter: Any) -> str:
    if listener_filter.HasField("typed_config"):
        return type_name(listener_filter.typed_config)
    return {"envoy.filters.listener.tls_inspector": TLS_INSPECTOR,
            "envoy.filters.listener.http_inspector": HTTP_INSPECTOR}.get(listener_filter.name, str(listener_filter.name))


def inspect(listener: Any, request: Request, dst_ip: str, dst_port: int) -> tuple[Connection, list[str]]:
    """The connection as the chain match sees it, and what each listener filter found."""
    facts: list[str] = []
    tls_on = http_on = False
    for listener_filter in listener.listener_filters:
        kind = _listener_filter_type(listener_filter)
        enabled = _filter_enabled(listener_filter, dst_port)
        if kind == TLS_INSPECTOR:
            tls_on = enabled
            if not enabled:
                facts.append(f"tls_inspector is disabled for port {dst_port}")
        elif kind == HTTP_INSPECTOR:
            http_on = enabled
            if not enabled:
                facts.append(f"http_inspector is disabled for port {dst_port}")
    encrypted = request.transport is not Transport.plaintext
    transport = "raw_buffer"
    server_name = ""
    alpn: tuple[str, ...] = ()
    if encrypted and tls_on:
        transport = "tls"
        server_name = request.sni
        alpn = request.alpn
        shown = f'SNI "{server_name}"' if server_name else "no SNI"
        facts.append(f"tls_inspector: TLS, {shown}, ALPN [{', '.join(alpn)}]")
    elif encrypted:
        facts.append("no tls_inspector: the TLS connection is seen as raw_buffer, without SNI or ALPN")
    elif tls_on:
        facts.append("tls_inspector: not TLS (raw_buffer)")
    if not encrypted and http_on:
        if request.http:
            alpn = ("h2c",) if request.http2 else ("http/1.1",)
            facts.append(f"http_inspector: plaintext {request.protocol}, ALPN {alpn[0]}")
        else:
            facts.append("http_inspector: not HTTP")
    connection = Connection(dst_ip, dst_port, request.source_ip, request.source_port, server_name, transport, alpn)
    return connection, facts


@dataclass(frozen=True, slots=True)
class ChainChoice:
    """The chain taken (its index, or -1 for `default_filter_chain`; None when nothing
    matched), and for every other chain the reason it lost."""

    index: int | None
    chain: Any | None
    losers: tuple[tuple[int, str], ...] = ()
    undecidable: str = ""


@dataclass(slots=True)
class _Level:
    """One criterion: its name, how a chain's value matches (a score: higher is more specific,
    None no match, 0 not set) and how a loser is described."""

    name: str
    score: Callable[[Any], int | None]
    describe: Callable[[Any], str]
    survivors: list[int] = field(default_factory=list)


def _prefix_score(ranges: Sequence[Any], address: str) -> int | None:
    if not ranges:
        return 0
    best = None
    for cidr in ranges:
        length = cidr.prefix_len.value if cidr.HasField("prefix_len") else (128 if ":" in cidr.address_prefix else 32)
        if cidr_contains(address, cidr.address_prefix, length):
            best = max(best or 0, length + 1)
    return best


def _server_name_score(names: Sequence[str], server_name: str) -> int | None:
    if not names:
        return 0
    best = None
    for name in names:
        name = name.lower()
        if name == server_name:
            return 1_000_000
        if name.startswith("*.") and server_name.endswith(name[1:]) and len(server_name) > len(name) - 1:
            best = max(best or 0, len(name))
    return best


def _alpn_score(protocols: Sequence[str], offered: Sequence[str]) -> int | None:
    if not protocols:
        return 0
    for position, protocol in enumerate(offered):
        if protocol in protocols:
            return 1000 - position
    return None


def _source_type_score(source_type: int, connection: Connection) -> int | None:
    if source_type == 0:  # ANY
        return 0
    local = connection.src_ip == connection.dst_ip or _is_loopback(connection.src_ip)
    if source_type == 1:  # SAME_IP_OR_LOOPBACK
        return 1 if local else None
    return 1 if not local else None  # EXTERNAL


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _levels(connection: Connection) -> list[_Level]:
    c = connection
    return [
        _Level("destination_port",
               lambda m: 0 if not m.HasField("destination_port") else (1 if m.destination_port.value == c.dst_port else None),
               lambda m: f"destination_port {m.destination_port.value} (connection: {c.dst_port})"),
        _Level("prefix_ranges", lambda m: _prefix_score(m.prefix_ranges, c.dst_ip),
               lambda m: f"prefix_ranges {_cidrs(m.prefix_ranges)} (destination {c.dst_ip or 'unknown'})"),
        _Level("server_names", lambda m: _server_name_score(m.server_names, c.server_name.lower()),
               lambda m: f"server_names [{', '.join(m.server_names)}] (SNI {_shown(c.server_name)})"),
        _Level("transport_protocol",
               lambda m: 0 if not m.transport_protocol else (1 if m.transport_protocol == c.transport_protocol else None),
               lambda m: f"transport_protocol {m.transport_protocol} (connection: {c.transport_protocol})"),
        _Level("application_protocols", lambda m: _alpn_score(m.application_protocols, c.alpn),
               lambda m: f"application_protocols [{', '.join(m.application_protocols)}] (connection: [{', '.join(c.alpn)}])"),
        _Level("direct_source_prefix_ranges", lambda m: _prefix_score(m.direct_source_prefix_ranges, c.src_ip),
               lambda m: f"direct_source_prefix_ranges {_cidrs(m.direct_source_prefix_ranges)} (source {c.src_ip})"),
        _Level("source_type", lambda m: _source_type_score(m.source_type, c),
               lambda m: f"source_type {m.source_type} (source {c.src_ip})"),
        _Level("source_prefix_ranges", lambda m: _prefix_score(m.source_prefix_ranges, c.src_ip),
               lambda m: f"source_prefix_ranges {_cidrs(m.source_prefix_ranges)} (source {c.src_ip})"),
        _Level("source_ports",
               lambda m: 0 if not m.source_ports else (1 if c.src_port in m.source_ports else None),
               lambda m: f"source_ports {list(m.source_ports)} (source port {c.src_port})"),
    ]


def _cidrs(ranges: Sequence[Any]) -> str:
    return "[" + ", ".join(f"{r.address_prefix}/{r.prefix_len.value}" for r in ranges) + "]"


def _shown(value: str) -> str:
    return f'"{value}"' if value else "none"


def select_chain(listener: Any, connection: Connection) -> ChainChoice:
    """Envoy's filter chain match (module docstring)."""
    if listener.HasField("filter_chain_matcher"):
        return ChainChoice(None, None, undecidable="the listener picks chains with filter_chain_matcher, "
                                                    "which explain does not evaluate")
    chains = list(listener.filter_chains)
    alive = list(range(len(chains)))
    losers: list[tuple[int, str]] = []
    for level in _levels(connection):
        scored = [(index, level.score(chains[index].filter_chain_match)) for index in alive]
        best = max((score for _, score in scored if score), default=None)
        if best is not None:
            keep = [index for index, score in scored if score == best]
        else:
            keep = [index for index, score in scored if score == 0]
        for index, score in scored:
            if index in keep:
                continue
            described = level.describe(chains[index].filter_chain_match)
            if score is None:
                losers.append((index, f"{described} does not match"))
            else:
                why = "is not set" if score == 0 else "is less specific"
                losers.append((index, f"{level.name} {why}, and another chain's matches"))
        alive = keep
        if not alive:
            break
    if len(alive) == 1:
        return ChainChoice(alive[0], chains[alive[0]], tuple(losers))
    if len(alive) > 1:
        return ChainChoice(None, None, tuple(losers),
                           undecidable=f"{len(alive)} filter chains match alike, which Envoy refuses to load")
    if listener.HasField("default_filter_chain"):
        return ChainChoice(-1, listener.default_filter_chain, tuple(losers))
    return ChainChoice(None, None, tuple(losers))


def chain_label(chain: Any, index: int) -> str:
    """A chain's name, or its position (`default_filter_chain` for the default)."""
    if chain.name:
        return str(chain.name)
    return "default_filter_chain" if index < 0 else f"filter_chains[{index}]"


def describe_match(match: Any) -> str:
    """A chain's match criteria, briefly; `any connection` when it sets none."""
    parts = []
    if match.HasField("destination_port"):
        parts.append(f"port {match.destination_port.value}")
    if match.prefix_ranges:
        parts.append(f"destination {_cidrs(match.prefix_ranges)}")
    if match.server_names:
        parts.append(f"SNI [{', '.join(match.server_names)}]")
    if match.transport_protocol:
        parts.append(match.transport_protocol)
    if match.application_protocols:
        parts.append(f"ALPN [{', '.join(match.application_protocols)}]")
    if match.source_prefix_ranges:
        parts.append(f"source {_cidrs(match.source_prefix_ranges)}")
    return ", ".join(parts) or "any connection"
