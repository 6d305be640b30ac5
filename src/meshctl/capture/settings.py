"""istio-iptables' flags and the environment variables that stand in for them.

Every flag but `--envoy-port` also reads a variable named after it (`--istio-service-cidr` ↔
`ISTIO_SERVICE_CIDR`); a few read an alias too (`ISTIO_META_DNS_CAPTURE` for `--redirect-dns`).
Precedence is istio-iptables': the command line, else the alias, else the variable, else the
default; a variable that does not parse (`REDIRECT_DNS=maybe`) is ignored, a set but empty one
counts (`ISTIO_SERVICE_CIDR=` means no outbound capture). Some settings exist only as variables
(owner groups, the IPv4 loopback range, `ENVOY_USER`). The rest is derived from the pod: IPv6
from its addresses, DNS servers from its resolv.conf.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from meshctl.capture.config import CaptureConfig, parse_cidr, split
from meshctl.config.values import parse_duration
from meshctl.errors import MeshctlError, UsageError

__all__ = [
    "DEFAULT_PROXY_UID",
    "ENVIRONMENT_ONLY",
    "ENVOY_USER",
    "FLAGS",
    "Flag",
    "Flags",
    "IPV4_LOOPBACK_CIDR",
    "Kind",
    "MAX_OWNER_GROUPS",
    "OWNER_GROUPS",
    "OWNER_GROUPS_EXCLUDE",
    "Pod",
    "Settings",
    "pod_address",
    "read_flags",
    "settle",
    "split_nameservers",
    "validate",
]

ENVOY_USER = "ENVOY_USER"
OWNER_GROUPS = "ISTIO_OUTBOUND_OWNER_GROUPS"
OWNER_GROUPS_EXCLUDE = "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE"
IPV4_LOOPBACK_CIDR = "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR"
ENVIRONMENT_ONLY = {ENVOY_USER: "istio-proxy", OWNER_GROUPS: "*", OWNER_GROUPS_EXCLUDE: "",
                    IPV4_LOOPBACK_CIDR: "127.0.0.1/32"}
DEFAULT_PROXY_UID = "1337"
MAX_OWNER_GROUPS = 64


class Kind(enum.Enum):
    TEXT = "text"
    SWITCH = "switch"
    PORT = "port"
    DURATION = "duration"


@dataclass(frozen=True, slots=True)
class Flag:
    """One istio-iptables flag: its names, type, default and environment variables."""

    name: str
    short: str | None = None
    kind: Kind = Kind.TEXT
    default: str = ""
    from_env: bool = True
    alias: str | None = None

    @property
    def variable(self) -> str | None:
        return self.name.upper().replace("-", "_") if self.from_env else None

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")


FLAGS: tuple[Flag, ...] = (
    Flag("envoy-port", "p", default="15001", from_env=False),
    Flag("inbound-capture-port", "z", default="15006"),
    Flag("inbound-tunnel-port", "e", default="15008"),
    Flag("proxy-uid", "u"),
    Flag("proxy-gid", "g"),
    Flag("istio-inbound-interception-mode", "m"),
    Flag("istio-inbound-tproxy-mark", "t", default="1337"),
    Flag("istio-inbound-tproxy-route-table", "r", default="133"),
    Flag("istio-inbound-ports", "b"),
    Flag("istio-local-exclude-ports", "d"),
    Flag("istio-exclude-interfaces", "c"),
    Flag("istio-service-cidr", "i"),
    Flag("istio-service-exclude-cidr", "x"),
    Flag("istio-outbound-ports", "q"),
    Flag("istio-local-outbound-ports-exclude", "o"),
    Flag("kube-virt-interfaces", "k"),
    Flag("dry-run", "n", Kind.SWITCH),
    Flag("iptables-probe-port", kind=Kind.PORT, default="15002"),
    Flag("probe-timeout", kind=Kind.DURATION, default="5s"),
    Flag("redirect-dns", kind=Kind.SWITCH, alias="ISTIO_META_DNS_CAPTURE"),
    Flag("drop-invalid", kind=Kind.SWITCH, alias="INVALID_DROP"),
    Flag("dual-stack", kind=Kind.SWITCH, alias="ISTIO_DUAL_STACK"),
    Flag("capture-all-dns", kind=Kind.SWITCH),
    Flag("network-namespace"),
    Flag("cni-mode", kind=Kind.SWITCH),
    Flag("skip-rule-apply", kind=Kind.SWITCH),
    Flag("run-validation", kind=Kind.SWITCH),
    Flag("reconcile", kind=Kind.SWITCH),
    Flag("cleanup-only", kind=Kind.SWITCH),
    Flag("force-apply", kind=Kind.SWITCH),
    Flag("native-nftables", kind=Kind.SWITCH),
    Flag("force-iptables-binary"),
)


@dataclass(frozen=True, slots=True)
class Flags:
    """The value of every flag once command line, environment and defaults are settled."""

    envoy_port: str
    inbound_capture_port: str
    inbound_tunnel_port: str
    proxy_uid: str
    proxy_gid: str
    istio_inbound_interception_mode: str
    istio_inbound_tproxy_mark: str
    istio_inbound_tproxy_route_table: str
    istio_inbound_ports: str
    istio_local_exclude_ports: str
    istio_exclude_interfaces: str
    istio_service_cidr: str
    istio_service_exclude_cidr: str
    istio_outbound_ports: str
    istio_local_outbound_ports_exclude: str
    kube_virt_interfaces: str
    dry_run: bool
    iptables_probe_port: int
    probe_timeout: float
    redirect_dns: bool
    drop_invalid: bool
    dual_stack: bool
    capture_all_dns: bool
    network_namespace: str
    cni_mode: bool
    skip_rule_apply: bool
    run_validation: bool
    reconcile: bool
    cleanup_only: bool
    force_apply: bool
    native_nftables: bool
    force_iptables_binary: str


def _parse(flag: Flag, text: str) -> str | bool | int | float | None:
    """`text` as the flag's type, or None where Go's parser would refuse it."""
    if flag.kind is Kind.TEXT:
        return text
    if flag.kind is Kind.SWITCH:
        # strconv.ParseBool
        if text in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if text in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        return None
    if flag.kind is Kind.PORT:
        return int(text) if text.isdigit() and int(text) <= 65535 else None
    nanos = parse_duration(text)
    return nanos / 1e9 if nanos is not None else None


def read_flags(given: Mapping[str, str | bool | None], environ: Mapping[str, str]) -> Flags:
    """Settle every flag: `given` holds what the command line set (None or missing: not set),
    keyed by flag name. A command-line value that does not parse is a usage error; an
    environment value that does not parse is ignored, as istio-iptables ignores it."""
    values: dict[str, Any] = {}
    for flag in FLAGS:
        value = _parse(flag, flag.default)
        for variable in (flag.variable, flag.alias):
            if variable is not None and variable in environ:
                parsed = _parse(flag, environ[variable])
                value = parsed if parsed is not None else value
        given_value = given.get(flag.name)
        if isinstance(given_value, bool):
            value = given_value
        elif given_value is not None:
            value = _parse(flag, given_value)
            if value is None:
                raise UsageError(f"invalid argument {given_value!r} for --{flag.name}: not a {flag.kind.value}")
        values[flag.field] = value
    return Flags(**values)


class Pod(Protocol):
    """What istio-iptables reads from the pod it runs in."""

    def addresses(self) -> Sequence[str]:
        """Interface addresses, in the kernel's order (IPv4 first)."""

    def nameservers(self) -> Sequence[str]:
        """`nameserver` entries of resolv.conf, in order."""

    def uid_of(self, user: str) -> str | None:
        """The UID of a user name, None when there is no such user."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Flags plus what was derived from the environment and the pod."""

    flags: Flags
    config: CaptureConfig
    host_ip: str


def settle(flags: Flags, environ: Mapping[str, str], pod: Pod) -> Settings:
    """The rule config istio-iptables builds (`FillConfigFromEnvironment`, then `Validate`)."""
    env = {name: environ.get(name, default) for name, default in ENVIRONMENT_ONLY.items()}
    uid = flags.proxy_uid or pod.uid_of(env[ENVOY_USER]) or DEFAULT_PROXY_UID
    host_ip, ipv6 = pod_address(pod.addresses(), dual_stack=flags.dual_stack)
    v4: tuple[str, ...] = ()
    v6: tuple[str, ...] = ()
    if flags.redirect_dns and not flags.capture_all_dns:
        v4, v6 = split_nameservers(pod.nameservers())
    config = CaptureConfig(
        proxy_port=flags.envoy_port,
        inbound_capture_port=flags.inbound_capture_port,
        inbound_tunnel_port=flags.inbound_tunnel_port,
        proxy_uid=uid,
        proxy_gid=flags.proxy_gid or uid,
        interception_mode=flags.istio_inbound_interception_mode,
        tproxy_mark=flags.istio_inbound_tproxy_mark,
        tproxy_route_table=flags.istio_inbound_tproxy_route_table,
        inbound_ports_include=flags.istio_inbound_ports,
        inbound_ports_exclude=flags.istio_local_exclude_ports,
        outbound_ports_include=flags.istio_outbound_ports,
        outbound_ports_exclude=flags.istio_local_outbound_ports_exclude,
        outbound_ip_ranges_include=flags.istio_service_cidr,
        outbound_ip_ranges_exclude=flags.istio_service_exclude_cidr,
        kube_virt_interfaces=flags.kube_virt_interfaces,
        exclude_interfaces=flags.istio_exclude_interfaces,
        owner_groups_include=env[OWNER_GROUPS],
        owner_groups_exclude=env[OWNER_GROUPS_EXCLUDE],
        redirect_dns=flags.redirect_dns,
        capture_all_dns=flags.capture_all_dns,
        drop_invalid=flags.drop_invalid,
        enable_ipv6=ipv6,
        dns_servers_v4=v4,
        dns_servers_v6=v6,
        host_ipv4_loopback_cidr=env[IPV4_LOOPBACK_CIDR],
    )
    validate(config)
    return Settings(flags, config, host_ip)


def validate(config: CaptureConfig) -> None:
    """istio-iptables' `Config.Validate`: owner groups and the IPv4 loopback range."""
    groups = split(config.owner_groups_include)
    if config.owner_groups_include != "*" and len(groups) > MAX_OWNER_GROUPS:
        raise MeshctlError(f"{OWNER_GROUPS}: at most {MAX_OWNER_GROUPS} groups can be captured, got {len(groups)}")
    text = config.host_ipv4_loopback_cidr
    cidr = parse_cidr(text)
    if cidr is None:
        raise MeshctlError(f"{IPV4_LOOPBACK_CIDR}: {text!r} is not a CIDR")
    if cidr.version != 4 or not cidr.address.is_loopback:
        raise MeshctlError(f"{IPV4_LOOPBACK_CIDR}: {text!r} is not an IPv4 loopback range (127.0.0.0/8)")
    if not 8 <= cidr.length <= 32:
        raise MeshctlError(f"{IPV4_LOOPBACK_CIDR}: {text!r} must have a mask between /8 and /32")


def pod_address(addresses: Sequence[str], *, dual_stack: bool) -> tuple[str, bool]:
    """The pod's address and whether IPv6 rules are needed (istio-iptables' `getLocalIP`).

    Loopback and link-local addresses do not count (IPv4-mapped ones are unwrapped). Without
    dual-stack the first address decides; with it, any IPv6 address turns IPv6 on.
    """
    usable: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for text in addresses:
        address = ipaddress.ip_address(text.partition("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_loopback or address.is_link_local:
            continue
        usable.append(address)
        if not dual_stack or address.version == 6:
            break
    if not usable:
        raise MeshctlError("no usable pod address: every address of this network namespace is loopback or "
                           "link-local (istio-iptables decides on IPv6 from it); give the pod an address or "
                           "use --pod-ips")
    return str(usable[0]), usable[-1].version == 6


def split_nameservers(servers: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """resolv.conf servers by family, as written; entries that are not IP addresses dropped."""
    v4: list[str] = []
    v6: list[str] = []
    for server in servers:
        try:
            address = ipaddress.ip_address(server)
        except ValueError:
            continue
        mapped = isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None
        (v4 if address.version == 4 or mapped else v6).append(server)
    return tuple(v4), tuple(v6)
