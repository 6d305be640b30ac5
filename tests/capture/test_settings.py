"""Flags, environment and pod as istio-iptables reads them (precedence, parsing, derivation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from meshctl.capture.pod import parse_resolv_conf
from meshctl.capture.settings import FLAGS, Kind, pod_address, read_flags, settle, split_nameservers
from meshctl.errors import MeshctlError, UsageError


@dataclass
class FakePod:
    """A pod with the given addresses, nameservers and users (the real one reads netlink)."""

    ips: Sequence[str] = ("10.1.2.3",)
    servers: Sequence[str] = ("10.96.0.10",)
    users: dict[str, str] | None = None

    def addresses(self) -> Sequence[str]:
        return self.ips

    def nameservers(self) -> Sequence[str]:
        return self.servers

    def uid_of(self, user: str) -> str | None:
        return (self.users or {}).get(user)


def test_defaults_are_istios() -> None:
    flags = read_flags({}, {})
    assert (flags.envoy_port, flags.inbound_capture_port, flags.inbound_tunnel_port) == ("15001", "15006", "15008")
    assert (flags.istio_inbound_tproxy_mark, flags.istio_inbound_tproxy_route_table) == ("1337", "133")
    assert (flags.iptables_probe_port, flags.probe_timeout) == (15002, 5.0)
    assert flags.istio_service_cidr == flags.istio_inbound_ports == ""
    assert not flags.dry_run and not flags.redirect_dns


def test_every_flag_but_envoy_port_reads_its_variable() -> None:
    assert [f.name for f in FLAGS if f.variable is None] == ["envoy-port"]
    flags = read_flags({}, {"ENVOY_PORT": "1", "INBOUND_CAPTURE_PORT": "2", "ISTIO_SERVICE_CIDR": "*",
                            "ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE": "25", "KUBE_VIRT_INTERFACES": "vm0",
                            "CAPTURE_ALL_DNS": "true", "IPTABLES_PROBE_PORT": "9", "PROBE_TIMEOUT": "1m30s"})
    assert flags.envoy_port == "15001"
    assert (flags.inbound_capture_port, flags.istio_service_cidr) == ("2", "*")
    assert (flags.istio_local_outbound_ports_exclude, flags.kube_virt_interfaces) == ("25", "vm0")
    assert flags.capture_all_dns and flags.iptables_probe_port == 9 and flags.probe_timeout == 90.0


def test_flag_beats_variable_and_empty_flag_counts() -> None:
    flags = read_flags({"istio-service-cidr": "", "dry-run": True}, {"ISTIO_SERVICE_CIDR": "*", "DRY_RUN": "false"})
    assert flags.istio_service_cidr == "" and flags.dry_run


def test_alias_beats_primary_variable() -> None:
    env = {"REDIRECT_DNS": "false", "ISTIO_META_DNS_CAPTURE": "true", "DROP_INVALID": "true", "INVALID_DROP": "0",
           "DUAL_STACK": "f", "ISTIO_DUAL_STACK": "T"}
    flags = read_flags({}, env)
    assert flags.redirect_dns and not flags.drop_invalid and flags.dual_stack


def test_unparsable_variables_are_ignored_but_set_empty_ones_count() -> None:
    env = {"REDIRECT_DNS": "yes", "ISTIO_META_DNS_CAPTURE": "maybe", "IPTABLES_PROBE_PORT": "70000",
           "PROBE_TIMEOUT": "5 seconds", "INBOUND_CAPTURE_PORT": ""}
    flags = read_flags({}, env)
    assert not flags.redirect_dns and flags.iptables_probe_port == 15002 and flags.probe_timeout == 5.0
    assert flags.inbound_capture_port == ""


def test_unparsable_flag_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--probe-timeout"):
        read_flags({"probe-timeout": "soon"}, {})


def test_environment_only_settings() -> None:
    env = {"ISTIO_OUTBOUND_OWNER_GROUPS": "java,202", "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE": "ftp",
           "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR": "127.0.0.1/8"}
    config = settle(read_flags({}, env), env, FakePod()).config
    assert (config.owner_groups_include, config.owner_groups_exclude) == ("java,202", "ftp")
    assert config.host_ipv4_loopback_cidr == "127.0.0.1/8"


def test_proxy_uid_comes_from_envoy_user_then_1337_and_gid_follows() -> None:
    pod = FakePod(users={"istio-proxy": "1500", "envoy": "101"})
    assert settle(read_flags({}, {}), {}, pod).config.proxy_uid == "1500"
    config = settle(read_flags({}, {"ENVOY_USER": "envoy"}), {"ENVOY_USER": "envoy"}, pod).config
    assert (config.proxy_uid, config.proxy_gid) == ("101", "101")
    config = settle(read_flags({}, {}), {}, FakePod()).config
    assert (config.proxy_uid, config.proxy_gid) == ("1337", "1337")
    config = settle(read_flags({"proxy-uid": "0", "proxy-gid": "1337"}, {}), {}, pod).config
    assert (config.proxy_uid, config.proxy_gid) == ("0", "1337")


@pytest.mark.parametrize(("ips", "dual_stack", "expected"), [
    (["127.0.0.1", "10.1.2.3", "::1", "fd00::3"], False, ("10.1.2.3", False)),
    (["127.0.0.1", "::1", "fe80::1", "fd00::3"], False, ("fd00::3", True)),
    (["127.0.0.1", "10.1.2.3", "fd00::3"], True, ("10.1.2.3", True)),
    (["10.1.2.3", "169.254.1.1"], True, ("10.1.2.3", False)),
    (["::ffff:10.1.2.3"], False, ("10.1.2.3", False)),
])
def test_ipv6_is_decided_by_the_pods_addresses(ips: list[str], dual_stack: bool, expected: tuple[str, bool]) -> None:
    assert pod_address(ips, dual_stack=dual_stack) == expected


def test_a_pod_without_a_usable_address_is_an_error() -> None:
    with pytest.raises(MeshctlError, match="no usable pod address"):
        pod_address(["127.0.0.1", "::1", "fe80::1"], dual_stack=False)


def test_dns_servers_are_read_only_when_redirect_dns_and_not_capture_all() -> None:
    pod = FakePod(servers=("10.96.0.10", "fd00::a", "dns.example"))
    assert settle(read_flags({}, {}), {}, pod).config.dns_servers_v4 == ()
    config = settle(read_flags({"redirect-dns": True}, {}), {}, pod).config
    assert (config.dns_servers_v4, config.dns_servers_v6) == (("10.96.0.10",), ("fd00::a",))
    config = settle(read_flags({"redirect-dns": True, "capture-all-dns": True}, {}), {}, pod).config
    assert config.dns_servers_v4 == () and config.dns_capture


def test_resolv_conf_parsing_keeps_servers_as_written() -> None:
    text = "# generated\nsearch default.svc.cluster.local\nnameserver 10.96.0.10\n;nameserver 1.1.1.1\n" \
           "nameserver   ::127.0.0.53  \noptions ndots:5\nnameserver\n"
    assert parse_resolv_conf(text) == ["10.96.0.10", "::127.0.0.53"]
    assert split_nameservers(["10.96.0.10", "::127.0.0.53", "::ffff:1.2.3.4", "x"]) == \
        (("10.96.0.10", "::ffff:1.2.3.4"), ("::127.0.0.53",))


@pytest.mark.parametrize(("cidr", "problem"), [
    ("10.0.0.1/32", "loopback"), ("127.0.0.1/4", "mask"), ("::1/128", "loopback"), ("127.0.0.1", "not a CIDR"),
    ("localhost/8", "not a CIDR"),
])
def test_bad_ipv4_loopback_cidr_is_refused(cidr: str, problem: str) -> None:
    env = {"ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR": cidr}
    with pytest.raises(MeshctlError, match=problem):
        settle(read_flags({}, env), env, FakePod())


def test_more_than_64_included_owner_groups_is_refused() -> None:
    env = {"ISTIO_OUTBOUND_OWNER_GROUPS": ",".join(str(g) for g in range(65))}
    with pytest.raises(MeshctlError, match="at most 64"):
        settle(read_flags({}, env), env, FakePod())


def test_flag_kinds_cover_every_go_type() -> None:
    assert {flag.kind for flag in FLAGS} == set(Kind)
