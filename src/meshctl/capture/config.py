"""What decides the rules: istio-iptables' settings once flags, environment and pod are read.

Values are kept as the text istio-iptables keeps (ports and ids are strings, lists are
comma-separated) because they end up verbatim in the rules: `-b "80, 81"` gives `--dport  81`
there too. Defaults are Istio's; a config built with only the fields a test sets is the config
istio-iptables' own capture tests build.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = [
    "AGENT_DNS_PORT",
    "CaptureConfig",
    "Cidr",
    "DNS_PORT",
    "IPV6_LOOPBACK",
    "OUTBOUND_MARK",
    "PASSTHROUGH_SOURCE",
    "Ranges",
    "SplitRanges",
    "TPROXY",
    "WILDCARD",
    "parse_cidr",
    "split",
    "split_ranges",
]

TPROXY = "TPROXY"
WILDCARD = "*"
OUTBOUND_MARK = "1338"
DNS_PORT = "53"
AGENT_DNS_PORT = "15053"
PASSTHROUGH_SOURCE = {4: "127.0.0.6/32", 6: "::6/128"}
IPV6_LOOPBACK = "::1/128"


def split(text: str) -> list[str]:
    """A comma-separated list, empty items dropped (istio-iptables' `config.Split`)."""
    return [item for item in text.split(",") if item]


@dataclass(frozen=True, slots=True)
class Cidr:
    """A CIDR as Go's `netip.ParsePrefix` keeps it: the address as written (not masked), in
    canonical form, and its prefix length."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    length: int

    def __str__(self) -> str:
        return f"{self.address}/{self.length}"

    @property
    def version(self) -> int:
        return self.address.version


def parse_cidr(text: str) -> Cidr | None:
    """None unless `text` is ADDRESS/LENGTH with a valid length for the address family."""
    address_text, slash, length_text = text.partition("/")
    if not slash or not length_text.isdigit() or (len(length_text) > 1 and length_text[0] == "0"):
        return None
    try:
        address = ipaddress.ip_address(address_text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return None
    length = int(length_text)
    return Cidr(address, length) if length <= address.max_prefixlen else None


@dataclass(frozen=True, slots=True)
class Ranges:
    """One family's part of an `-i`/`-x` list: `*`, or CIDRs (noting whether one is loopback)."""

    wildcard: bool = False
    cidrs: tuple[Cidr, ...] = ()

    @property
    def has_loopback(self) -> bool:
        return any(cidr.address.is_loopback for cidr in self.cidrs)


@dataclass(frozen=True, slots=True)
class SplitRanges:
    ipv4: Ranges
    ipv6: Ranges
    unparsable: tuple[str, ...]


def split_ranges(text: str) -> SplitRanges:
    """`*` for both families, else the CIDRs of each family. Items that do not parse are left
    out and reported, as istio-iptables does ("ignoring error for bug compatibility")."""
    if text == WILDCARD:
        return SplitRanges(Ranges(wildcard=True), Ranges(wildcard=True), ())
    parsed = [(item, parse_cidr(item)) for item in split(text)]
    good = [cidr for _, cidr in parsed if cidr is not None]
    return SplitRanges(
        Ranges(cidrs=tuple(c for c in good if c.version == 4)),
        Ranges(cidrs=tuple(c for c in good if c.version == 6)),
        tuple(item for item, cidr in parsed if cidr is None),
    )


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """Everything the rules depend on (istio-iptables' `config.Config`, minus how to run)."""

    proxy_port: str = "15001"
    inbound_capture_port: str = "15006"
    inbound_tunnel_port: str = "15008"
    proxy_uid: str = "1337"
    proxy_gid: str = "1337"
    interception_mode: str = ""
    tproxy_mark: str = "1337"
    tproxy_route_table: str = "133"
    inbound_ports_include: str = ""
    inbound_ports_exclude: str = ""
    outbound_ports_include: str = ""
    outbound_ports_exclude: str = ""
    outbound_ip_ranges_include: str = ""
    outbound_ip_ranges_exclude: str = ""
    kube_virt_interfaces: str = ""
    exclude_interfaces: str = ""
    owner_groups_include: str = WILDCARD
    owner_groups_exclude: str = ""
    redirect_dns: bool = False
    capture_all_dns: bool = False
    drop_invalid: bool = False
    enable_ipv6: bool = False
    dns_servers_v4: tuple[str, ...] = ()
    dns_servers_v6: tuple[str, ...] = ()
    host_ipv4_loopback_cidr: str = "127.0.0.1/32"

    @property
    def tproxy(self) -> bool:
        """Anything but exactly `TPROXY` means REDIRECT, as in istio-iptables."""
        return self.interception_mode == TPROXY

    @property
    def dns_capture(self) -> bool:
        """Whether DNS is captured: asked for, and either all of it or some servers known.
        istio-iptables turns capture off (with a warning) when there is no server to capture."""
        return self.redirect_dns and (self.capture_all_dns or bool(self.dns_servers_v4 or self.dns_servers_v6))

    def loopback(self, version: int) -> str:
        """The loopback range Envoy-aware traffic is left alone for (`! -d` / `-d` in rules)."""
        return self.host_ipv4_loopback_cidr if version == 4 else IPV6_LOOPBACK
