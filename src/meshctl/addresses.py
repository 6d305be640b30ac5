"""`HOST:PORT` flags as every long-running command reads them (serve, agent, webhooks).

Standard library only: `meshctl agent` checks its addresses before it starts Envoy, and what
it imports before then delays every sidecar's start.
"""

from __future__ import annotations

from meshctl.errors import MeshctlError

__all__ = ["split_address"]


def split_address(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` into its parts, with a message the user can act on."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise MeshctlError(f"address {address!r} is not HOST:PORT (e.g. 127.0.0.1:15010)")
    return host.strip("[]"), int(port)
