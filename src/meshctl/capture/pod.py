"""The pod istio-iptables runs in: its addresses, its resolv.conf, its users, its namespace.

Addresses come from the kernel over netlink (the dump `net.InterfaceAddrs` reads, in the same
order: IPv4 before IPv6), so no `ip` binary is needed to print rules.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import os
import pwd
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from meshctl.errors import MeshctlError

__all__ = [
    "CLONE_NEWNET",
    "LocalPod",
    "RESOLV_CONF",
    "enter_network_namespace",
    "interface_addresses",
    "parse_resolv_conf",
]

RESOLV_CONF = "/etc/resolv.conf"
CLONE_NEWNET = 0x40000000
_RTM_NEWADDR, _RTM_GETADDR = 20, 22
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_HEADER = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_ATTRIBUTE = struct.Struct("=HH")


@dataclass(frozen=True, slots=True)
class LocalPod:
    """The network namespace this process is in; `addresses_override` replaces its addresses
    (to print the rules of another pod) and `resolv_conf` is where DNS servers are read."""

    addresses_override: tuple[str, ...] | None = None
    resolv_conf: str = RESOLV_CONF

    def addresses(self) -> Sequence[str]:
        if self.addresses_override is not None:
            return self.addresses_override
        return interface_addresses()

    def nameservers(self) -> Sequence[str]:
        try:
            with open(self.resolv_conf, encoding="utf-8", errors="replace") as handle:
                return parse_resolv_conf(handle.read())
        except OSError as exc:
            raise MeshctlError(f"failed to load {self.resolv_conf}: {exc.strerror}") from None

    def uid_of(self, user: str) -> str | None:
        try:
            return str(pwd.getpwnam(user).pw_uid)
        except KeyError:
            return None


def parse_resolv_conf(text: str) -> list[str]:
    """The `nameserver` values, in order, as written (comments start with `#` or `;`)."""
    servers = []
    for line in text.splitlines():
        if line.startswith(("#", ";")):
            continue
        fields = line.split()
        if len(fields) > 1 and fields[0] == "nameserver":
            servers.append(fields[1])
    return servers


def interface_addresses() -> list[str]:
    """Every interface address of this network namespace (RTM_GETADDR dump)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as sock:
        request = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        sock.send(_HEADER.pack(_HEADER.size + len(request), _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
                  + request)
        found: list[str] = []
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
                if kind == _NLMSG_DONE:
                    return found
                if kind == _NLMSG_ERROR:
                    raise MeshctlError("reading the interface addresses over netlink failed")
                if kind == _RTM_NEWADDR:
                    address = _address(data[offset + _HEADER.size:offset + length])
                    if address is not None:
                        found.append(address)
                offset += (length + 3) & ~3


def _address(message: bytes) -> str | None:
    family = message[0]
    attributes: dict[int, bytes] = {}
    offset = _IFADDRMSG.size
    while offset + _ATTRIBUTE.size <= len(message):
        length, kind = _ATTRIBUTE.unpack_from(message, offset)
        if length < _ATTRIBUTE.size:
            break
        attributes[kind] = message[offset + _ATTRIBUTE.size:offset + length]
        offset += (length + 3) & ~3
    raw = attributes.get(_IFA_LOCAL) or attributes.get(_IFA_ADDRESS)
    if raw is None or family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return str(ipaddress.ip_address(raw))


def enter_network_namespace(path: str) -> None:
    """Move the calling thread into the network namespace at `path` (`/var/run/netns/NAME`,
    `/proc/PID/ns/net`). Called before any other thread starts, it moves the whole process,
    and every command it runs afterwards."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise MeshctlError(f"cannot open network namespace {path}: {exc.strerror}") from None
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise MeshctlError(f"cannot enter network namespace {path}: {os.strerror(error)}"
                               + (" (needs root or CAP_SYS_ADMIN)" if error == 1 else ""))
    finally:
        os.close(fd)
