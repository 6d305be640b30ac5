"""The rules istio-iptables generates, in its emission order (tools/istio-iptables `capture.Run`).

A pure function of `CaptureConfig`: no I/O, so `--dry-run`, the apply step and the tests all
see the same rules. Order matters twice: it is the order of the payload (compared with Istio's
goldens line for line) and, through appends and `-I CHAIN 1` inserts, the order the kernel
evaluates the rules in.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshctl.capture.config import (
    AGENT_DNS_PORT,
    DNS_PORT,
    OUTBOUND_MARK,
    PASSTHROUGH_SOURCE,
    WILDCARD,
    CaptureConfig,
    Ranges,
    split,
    split_ranges,
)
from meshctl.capture.rules import Rule, Ruleset
from meshctl.errors import MeshctlError

__all__ = [
    "CaptureConfigError",
    "DIVERT",
    "DROP",
    "INBOUND",
    "IN_REDIRECT",
    "OUTPUT",
    "OUTPUT_DNS",
    "PerFamily",
    "REDIRECT",
    "TPROXY_CHAIN",
    "Word",
    "build_rules",
    "warnings",
]

INBOUND = "ISTIO_INBOUND"
REDIRECT = "ISTIO_REDIRECT"
IN_REDIRECT = "ISTIO_IN_REDIRECT"
OUTPUT = "ISTIO_OUTPUT"
OUTPUT_DNS = "ISTIO_OUTPUT_DNS"
DIVERT = "ISTIO_DIVERT"
TPROXY_CHAIN = "ISTIO_TPROXY"
DROP = "ISTIO_DROP"


class CaptureConfigError(MeshctlError):
    """Settings istio-iptables refuses (exit 1)."""


@dataclass(frozen=True, slots=True)
class PerFamily:
    """A word of a rule that differs between IPv4 and IPv6 (a loopback or source range)."""

    v4: str
    v6: str


Word = str | PerFamily


class _Builder:
    """Collects rules for both families; IPv6 rules only when the pod has IPv6."""

    def __init__(self, ipv6: bool) -> None:
        self._ipv6 = ipv6
        self.ipv4: list[Rule] = []
        self.ipv6: list[Rule] = []

    def add(self, table: str, chain: str, *spec: Word, at: int | None = None, only: int | None = None) -> None:
        """Append (or insert `at` a position) in both families, or `only` in version 4 or 6."""
        if only != 6:
            self.ipv4.append(Rule(table, chain, _words(spec, 4), at))
        if only != 4 and self._ipv6:
            self.ipv6.append(Rule(table, chain, _words(spec, 6), at))


def _words(spec: tuple[Word, ...], version: int) -> tuple[str, ...]:
    return tuple(w if isinstance(w, str) else (w.v4 if version == 4 else w.v6) for w in spec)


def build_rules(config: CaptureConfig) -> Ruleset:
    """Every rule istio-iptables would install for `config`, in its order."""
    include = split_ranges(config.outbound_ip_ranges_include)
    exclude = split_ranges(config.outbound_ip_ranges_exclude)
    if exclude.ipv4.wildcard:
        raise CaptureConfigError("invalid value for OUTBOUND_IP_RANGES_EXCLUDE: '*' cannot be excluded (-x)")
    rules = _Builder(config.enable_ipv6)
    loopback = PerFamily(config.loopback(4), config.loopback(6))
    tunnel = config.inbound_tunnel_port

    for nic in split(config.exclude_interfaces):
        rules.add("nat", "PREROUTING", "-i", nic, "-j", "RETURN")
        rules.add("nat", "OUTPUT", "-o", nic, "-j", "RETURN")
    if config.tproxy:
        for nic in split(config.exclude_interfaces):
            rules.add("mangle", "PREROUTING", "-i", nic, "-j", "RETURN")
            rules.add("mangle", "OUTPUT", "-o", nic, "-j", "RETURN")
    for nic in split(config.kube_virt_interfaces):
        rules.add("nat", "PREROUTING", "-i", nic, "-j", "RETURN", at=1)
    if config.drop_invalid:
        rules.add("mangle", "PREROUTING", "-m", "conntrack", "--ctstate", "INVALID", "-j", DROP)
        rules.add("mangle", DROP, "-j", "DROP")

    rules.add("nat", INBOUND, "-p", "tcp", "--dport", tunnel, "-j", "RETURN")
    rules.add("nat", REDIRECT, "-p", "tcp", "-j", "REDIRECT", "--to-ports", config.proxy_port)
    rules.add("nat", IN_REDIRECT, "-p", "tcp", "-j", "REDIRECT", "--to-ports", config.inbound_capture_port)
    _inbound(rules, config, loopback)

    rules.add("nat", "OUTPUT", "-j", OUTPUT)
    for port in split(config.outbound_ports_exclude):
        rules.add("nat", OUTPUT, "-p", "tcp", "--dport", port, "-j", "RETURN")
        rules.add("nat", OUTPUT, "-p", "udp", "--dport", port, "-j", "RETURN")
    rules.add("nat", OUTPUT, "-o", "lo", "-s", PerFamily(PASSTHROUGH_SOURCE[4], PASSTHROUGH_SOURCE[6]), "-j", "RETURN")
    _proxy_owners(rules, config, loopback, loopback_included=include.ipv4.has_loopback or include.ipv6.has_loopback)
    _owner_groups(rules, config)
    if config.dns_capture:
        _dns(rules, config)

    rules.add("nat", OUTPUT, "-d", loopback, "-j", "RETURN")
    for cidr in exclude.ipv4.cidrs:
        rules.add("nat", OUTPUT, "-d", str(cidr), "-j", "RETURN", only=4)
    for cidr in exclude.ipv6.cidrs:
        rules.add("nat", OUTPUT, "-d", str(cidr), "-j", "RETURN", only=6)
    for port in split(config.outbound_ports_include):
        rules.add("nat", OUTPUT, "-p", "tcp", "--dport", port, "-j", REDIRECT)
    _outbound_include(rules, config, include.ipv4, 4)
    _outbound_include(rules, config, include.ipv6, 6)
    if config.tproxy:
        _tproxy_marks(rules, config, loopback)
    return Ruleset(tuple(rules.ipv4), tuple(rules.ipv6))


def warnings(config: CaptureConfig, resolv_conf: str) -> list[str]:
    """What istio-iptables warns about and carries on: CIDRs it skips, DNS capture it turns off."""
    notes = [f"ignoring {item!r} in {flag}: not a CIDR"
             for flag, text in (("--istio-service-cidr", config.outbound_ip_ranges_include),
                                ("--istio-service-exclude-cidr", config.outbound_ip_ranges_exclude))
             for item in split_ranges(text).unparsable]
    if config.redirect_dns and not config.dns_capture:
        notes.append(f"--redirect-dns: no DNS server in {resolv_conf} and no --capture-all-dns; DNS capture is off")
    return notes


def _inbound(rules: _Builder, config: CaptureConfig, loopback: PerFamily) -> None:
    """Inbound capture: nothing without `-b`; REDIRECT to the capture port in nat, or in TPROXY
    mode a mark, a divert for established connections and TPROXY itself, all in mangle."""
    if not config.inbound_ports_include:
        return
    mark = config.tproxy_mark
    table = "nat"
    if config.tproxy:
        rules.add("mangle", DIVERT, "-j", "MARK", "--set-mark", mark)
        rules.add("mangle", DIVERT, "-j", "ACCEPT")
        rules.add("mangle", TPROXY_CHAIN, "!", "-d", loopback, "-p", "tcp", "-j", "TPROXY",
                  "--tproxy-mark", f"{mark}/0xffffffff", "--on-port", config.inbound_capture_port)
        table = "mangle"
    rules.add(table, "PREROUTING", "-p", "tcp", "-j", INBOUND)
    if config.inbound_ports_include == WILDCARD:
        for port in split(config.inbound_ports_exclude):
            rules.add(table, INBOUND, "-p", "tcp", "--dport", port, "-j", "RETURN")
        _capture_inbound(rules, config, ())
    else:
        for port in split(config.inbound_ports_include):
            _capture_inbound(rules, config, ("--dport", port))


def _capture_inbound(rules: _Builder, config: CaptureConfig, port: tuple[str, ...]) -> None:
    if config.tproxy:
        rules.add("mangle", INBOUND, "-p", "tcp", *port, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                  "-j", DIVERT)
        rules.add("mangle", INBOUND, "-p", "tcp", *port, "-j", TPROXY_CHAIN)
    else:
        rules.add("nat", INBOUND, "-p", "tcp", *port, "-j", IN_REDIRECT)


def _proxy_owners(rules: _Builder, config: CaptureConfig, loopback: PerFamily, *, loopback_included: bool) -> None:
    """Per proxy UID, then GID: the proxy calling the pod's own address goes to inbound (app →
    Envoy → Envoy → app), others' loopback traffic is left alone, and the proxy's own traffic is
    never captured. With DNS capture, port 53 is kept out of the first two. The GID form of the
    first rule never takes the DNS form (istio-iptables does the same)."""
    dns = config.dns_capture
    tunnel = config.inbound_tunnel_port
    for option, owners in (("--uid-owner", config.proxy_uid), ("--gid-owner", config.proxy_gid)):
        for owner in split(owners):
            ports: tuple[str, ...] = ("!", "--dport", tunnel)
            if dns and option == "--uid-owner":
                ports = ("-m", "multiport", "!", "--dports", f"{DNS_PORT},{tunnel}")
            rules.add("nat", OUTPUT, "-o", "lo", "!", "-d", loopback, "-p", "tcp", *ports, "-m", "owner", option, owner,
                      "-j", IN_REDIRECT)
            if not loopback_included:
                local = ("-p", "tcp", "!", "--dport", DNS_PORT) if dns else ()
                rules.add("nat", OUTPUT, "-o", "lo", *local, "-m", "owner", "!", option, owner, "-j", "RETURN")
            rules.add("nat", OUTPUT, "-m", "owner", option, owner, "-j", "RETURN")


def _owner_groups(rules: _Builder, config: CaptureConfig) -> None:
    """`ISTIO_OUTBOUND_OWNER_GROUPS[_EXCLUDE]`: skip the excluded groups, or everything but the
    included ones (one rule; an empty include list therefore captures nothing)."""
    if config.owner_groups_include == WILDCARD:
        for group in split(config.owner_groups_exclude):
            rules.add("nat", OUTPUT, "-m", "owner", "--gid-owner", group, "-j", "RETURN")
        return
    matches = [word for group in split(config.owner_groups_include)
               for word in ("-m", "owner", "!", "--gid-owner", group)]
    rules.add("nat", OUTPUT, *matches, "-j", "RETURN")


def _dns(rules: _Builder, config: CaptureConfig) -> None:
    """DNS to the agent on 15053: TCP and UDP to the resolv.conf servers (or any server with
    capture-all), and conntrack zones keeping the agent's queries apart from the app's."""
    capture_all = config.capture_all_dns
    servers = ((4, config.dns_servers_v4, "/32"), (6, config.dns_servers_v6, "/128"))
    rules.add("raw", "OUTPUT", "-j", OUTPUT_DNS)
    for version, found, _ in servers:
        if capture_all or found:
            rules.add("nat", OUTPUT, "-j", OUTPUT_DNS, only=version)
    for protocol, option in (("tcp", "--to-ports"), ("udp", "--to-port")):
        if capture_all:
            rules.add("nat", OUTPUT_DNS, "-p", protocol, "--dport", DNS_PORT, "-j", "REDIRECT", option, AGENT_DNS_PORT)
            continue
        for version, found, length in servers:
            for server in found:
                rules.add("nat", OUTPUT_DNS, "-p", protocol, "--dport", DNS_PORT, "-d", server + length,
                          "-j", "REDIRECT", option, AGENT_DNS_PORT, only=version)
    for option, owners in (("--uid-owner", config.proxy_uid), ("--gid-owner", config.proxy_gid)):
        for owner in split(owners):
            rules.add("raw", OUTPUT_DNS, "-p", "udp", "--dport", DNS_PORT, "-m", "owner", option, owner,
                      "-j", "CT", "--zone", "1")
            rules.add("raw", OUTPUT_DNS, "-p", "udp", "--sport", AGENT_DNS_PORT, "-m", "owner", option, owner,
                      "-j", "CT", "--zone", "2")
    if capture_all:
        rules.add("raw", "PREROUTING", "-j", INBOUND)
        rules.add("raw", OUTPUT_DNS, "-p", "udp", "--dport", DNS_PORT, "-j", "CT", "--zone", "2")
        rules.add("raw", INBOUND, "-p", "udp", "--sport", DNS_PORT, "-j", "CT", "--zone", "1")
        return
    for version, found, length in servers:
        if found:
            rules.add("raw", "PREROUTING", "-j", INBOUND, only=version)
        for server in found:
            rules.add("raw", OUTPUT_DNS, "-p", "udp", "--dport", DNS_PORT, "-d", server + length,
                      "-j", "CT", "--zone", "2", only=version)
            rules.add("raw", INBOUND, "-p", "udp", "--sport", DNS_PORT, "-s", server + length,
                      "-j", "CT", "--zone", "1", only=version)


def _outbound_include(rules: _Builder, config: CaptureConfig, ranges: Ranges, version: int) -> None:
    """Outbound capture of one family: everything left (`*`), or the listed CIDRs; traffic from
    `-k` interfaces to them is redirected as if it were the pod's own outbound traffic."""
    nics = split(config.kube_virt_interfaces)
    if ranges.wildcard:
        rules.add("nat", OUTPUT, "-j", REDIRECT, only=version)
        for nic in nics:
            rules.add("nat", "PREROUTING", "-i", nic, "-j", REDIRECT, at=1, only=version)
        return
    for cidr in ranges.cidrs:
        for nic in nics:
            rules.add("nat", "PREROUTING", "-i", nic, "-d", str(cidr), "-j", REDIRECT, at=1, only=version)
        rules.add("nat", OUTPUT, "-d", str(cidr), "-j", REDIRECT, only=version)


def _tproxy_marks(rules: _Builder, config: CaptureConfig, loopback: PerFamily) -> None:
    """TPROXY's marks: Envoy's connections to the app keep mark 1337 (saved on the connection
    and restored on the app's replies, which policy routing then sends back to Envoy); the
    proxy's traffic to the pod's own address gets 1338, so inbound capture lets only that
    loopback traffic through."""
    mark = config.tproxy_mark
    rules.add("mangle", "PREROUTING", "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "CONNMARK", "--save-mark")
    rules.add("mangle", "OUTPUT", "-p", "tcp", "-o", "lo", "-m", "mark", "--mark", mark, "-j", "RETURN")
    for option, owners in (("--uid-owner", config.proxy_uid), ("--gid-owner", config.proxy_gid)):
        for owner in split(owners):
            rules.add("mangle", "OUTPUT", "!", "-d", loopback, "-p", "tcp", "-o", "lo", "-m", "owner", option, owner,
                      "-j", "MARK", "--set-mark", OUTBOUND_MARK)
    rules.add("mangle", "OUTPUT", "-p", "tcp", "-m", "connmark", "--mark", mark, "-j", "CONNMARK", "--restore-mark")
    rules.add("mangle", INBOUND, "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "RETURN", at=1)
    rules.add("mangle", INBOUND, "-p", "tcp", "-s", PerFamily(PASSTHROUGH_SOURCE[4], PASSTHROUGH_SOURCE[6]),
              "-i", "lo", "-j", "RETURN", at=2)
    rules.add("mangle", INBOUND, "-p", "tcp", "-i", "lo", "-m", "mark", "!", "--mark", OUTBOUND_MARK, "-j", "RETURN",
              at=3)
