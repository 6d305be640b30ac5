"""`meshctl iptables --dry-run` against istio-iptables' own capture tests.

Each case is a flag set of istio-iptables' `capture` golden tests (tools/istio-iptables/pkg/
capture/testdata/NAME.golden), given as the config those tests build, and its golden file here
holds the two payloads (IPv4, then IPv6) that Istio's golden holds between its
`iptables-save`/`ip6tables-save` lines. The goldens were checked by hand against Istio's: see
tests/capture/golden/README.md for the cases and for where Istio's older goldens differ from
the current code (DNS capture without servers, the UDP DNS returns, the TCP-only OUTPUT jump).
"""

from __future__ import annotations

from typing import Any

import pytest

from meshctl.capture.config import CaptureConfig
from meshctl.capture.plan import build_rules
from testsupport import ROOT, assert_matches_golden

GOLDEN = ROOT / "tests" / "capture" / "golden"
DNS = {"redirect_dns": True, "dns_servers_v4": ("127.0.0.53",)}
UIDS = {"proxy_gid": "1,2", "proxy_uid": "3,4"}

# istio-iptables' cases, with the names of its golden files.
ISTIO: dict[str, dict[str, Any]] = {
    "ipv6-empty-inbound-ports": {"inbound_ports_include": "", "enable_ipv6": True},
    "ip-range": {"outbound_ip_ranges_exclude": "1.1.0.0/16", "outbound_ip_ranges_include": "9.9.0.0/16", **DNS, **UIDS},
    "tproxy": {"interception_mode": "TPROXY", "inbound_ports_include": "*", "outbound_ip_ranges_exclude": "1.1.0.0/16",
               "outbound_ip_ranges_include": "9.9.0.0/16", **DNS, "exclude_interfaces": "not-istio-nic",
               "enable_ipv6": True},
    "ipv6-inbound-ports": {"inbound_ports_include": "4000,5000", "enable_ipv6": True},
    "ipv6-virt-interfaces": {"inbound_ports_include": "4000,5000", "kube_virt_interfaces": "eth0,eth1",
                             "enable_ipv6": True},
    "ipv6-ipnets": {"inbound_ports_include": "4000,5000", "inbound_ports_exclude": "6000,7000,",
                    "kube_virt_interfaces": "eth0,eth1", "outbound_ip_ranges_exclude": "2001:db8::/32",
                    "outbound_ip_ranges_include": "2001:db8::/32", "enable_ipv6": True},
    "ipv6-uid-gid": {"inbound_ports_include": "4000,5000", "inbound_ports_exclude": "6000,7000",
                     "kube_virt_interfaces": "eth0,eth1", **UIDS, "enable_ipv6": True,
                     "outbound_ip_ranges_exclude": "2001:db8::/32", "outbound_ip_ranges_include": "2001:db8::/32"},
    "ipv6-outbound-ports": {"outbound_ports_include": "32000,31000", "enable_ipv6": True},
    "empty": {},
    "kube-virt-interfaces": {"kube_virt_interfaces": "eth1,eth2", "outbound_ip_ranges_include": "*"},
    "ipnets": {"outbound_ip_ranges_include": "10.0.0.0/8"},
    "ipnets-with-kube-virt-interfaces": {"kube_virt_interfaces": "eth1,eth2", "outbound_ip_ranges_include": "10.0.0.0/8"},
    "inbound-ports-include": {"inbound_ports_include": "32000,31000"},
    "inbound-ports-wildcard": {"inbound_ports_include": "*"},
    "inbound-ports-tproxy": {"inbound_ports_include": "32000,31000", "interception_mode": "TPROXY"},
    "inbound-ports-wildcard-tproxy": {"inbound_ports_include": "*", "interception_mode": "TPROXY"},
    "dns-uid-gid": {**DNS, "dns_servers_v6": ("::127.0.0.53",), **UIDS, "enable_ipv6": True},
    "ipv6-dns-uid-gid": {"enable_ipv6": True, "redirect_dns": True, **UIDS},
    "outbound-owner-groups": {"owner_groups_include": "java,202"},
    "outbound-owner-groups-exclude": {"owner_groups_exclude": "888,ftp"},
    "ipv6-dns-outbound-owner-groups": {"enable_ipv6": True, "redirect_dns": True, "owner_groups_include": "java,202"},
    "ipv6-dns-outbound-owner-groups-exclude": {"enable_ipv6": True, "redirect_dns": True,
                                               "owner_groups_exclude": "888,ftp"},
    "outbound-ports-include": {"outbound_ports_include": "32000,31000"},
    "loopback-outbound-iprange": {"outbound_ip_ranges_include": "127.1.2.3/32", **DNS, **UIDS},
    "basic-exclude-nic": {"exclude_interfaces": "not-istio-nic"},
    "drop-invalid": {"drop_invalid": True},
    "host-ipv4-loopback-cidr": {"host_ipv4_loopback_cidr": "127.0.0.1/8"},
}

# Flag sets Istio's tests do not cover, derived from the same code paths.
MORE: dict[str, dict[str, Any]] = {
    "inbound-wildcard-exclude": {"inbound_ports_include": "*", "inbound_ports_exclude": "22,80,443"},
    "outbound-ports-exclude": {"outbound_ports_exclude": "22,80,443"},
    "capture-all-dns": {"redirect_dns": True, "capture_all_dns": True, "enable_ipv6": True, **UIDS},
    "dns-v6-server-only": {"redirect_dns": True, "dns_servers_v6": ("fd00::53",), "enable_ipv6": True},
    "tproxy-without-inbound-ports": {"interception_mode": "TPROXY", "outbound_ip_ranges_include": "*"},
    "istio-init-defaults": {"outbound_ip_ranges_include": "*", "inbound_ports_include": "*",
                            "inbound_ports_exclude": "15090,15021,15020"},
    "everything": {"interception_mode": "TPROXY", "inbound_ports_include": "*", "inbound_ports_exclude": "15020",
                   "outbound_ip_ranges_include": "10.96.0.0/12,fd00:96::/108", "kube_virt_interfaces": "vm0",
                   "outbound_ip_ranges_exclude": "10.96.0.1/32,fd00:96::1/128", "outbound_ports_include": "3306",
                   "outbound_ports_exclude": "25", "exclude_interfaces": "eth9", "drop_invalid": True, **DNS,
                   "dns_servers_v6": ("fd00::a",), "enable_ipv6": True, "owner_groups_exclude": "42"},
}


@pytest.mark.parametrize("name", [*ISTIO, *MORE])
def test_dry_run_matches_the_golden(name: str) -> None:
    config = CaptureConfig(**{**ISTIO, **MORE}[name])
    assert_matches_golden(GOLDEN / f"{name}.golden", build_rules(config).payloads())
