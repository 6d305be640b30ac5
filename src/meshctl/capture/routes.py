"""The policy routing TPROXY needs, and the IPv6 passthrough address (istio-iptables'
`configureRoutes`): packets marked 1337 are delivered locally, so TPROXY can hand them to Envoy
and the app's replies find their way back to it.

Skipped in dry-run. Idempotent: an existing rule is not added twice.
"""

from __future__ import annotations

import shutil
import subprocess

from meshctl.capture.config import PASSTHROUGH_SOURCE, CaptureConfig
from meshctl.errors import MeshctlError

__all__ = ["RoutesError", "configure"]


class RoutesError(MeshctlError):
    pass


def configure(config: CaptureConfig) -> None:
    """`::6/128` on lo with IPv6 (IPv6 loopback is only ::1/128, and Envoy's inbound
    passthrough binds to ::6); for TPROXY with inbound capture, per family
    `ip rule add fwmark MARK lookup TABLE` and `ip route add local default dev lo table TABLE`."""
    tproxy = config.tproxy and bool(config.inbound_ports_include)
    if not (tproxy or config.enable_ipv6):
        return
    if config.enable_ipv6 and not _ip("-6", "addr", "show", "dev", "lo", "to", PASSTHROUGH_SOURCE[6]).strip():
        _ip("-6", "addr", "add", PASSTHROUGH_SOURCE[6], "dev", "lo")
    if not tproxy:
        return
    mark, table = config.tproxy_mark, config.tproxy_route_table
    for family in ("-4", "-6") if config.enable_ipv6 else ("-4",):
        if not _ip(family, "rule", "list", "fwmark", mark, "lookup", table).strip():
            _ip(family, "rule", "add", "fwmark", mark, "lookup", table)
        _ip(family, "route", "replace", "local", "default", "dev", "lo", "table", table)


def _ip(*args: str) -> str:
    binary = shutil.which("ip")
    if binary is None:
        raise RoutesError("ip not found: TPROXY and IPv6 capture need it for routes and addresses; install "
                          "iproute2 (Debian: apt-get install iproute2)")
    done = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RoutesError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout
