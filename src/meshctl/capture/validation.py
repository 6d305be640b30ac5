"""`--run-validation`: prove the installed rules capture traffic (istio-iptables' validator).

Listen where Envoy would (loopback, on the outbound and inbound capture ports), then connect
once a second to the inbound passthrough address (127.0.0.6, or ::6) on the probe port. The
rules redirect that connection to a listener only for the proxy's own UID, so success means
"the rules are in and this process is the proxy": run it as the proxy user, as Istio's
`istio-validation` container does.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from contextlib import ExitStack

from meshctl.capture.config import CaptureConfig
from meshctl.errors import ExitCode, MeshctlError

__all__ = ["SO_ORIGINAL_DST", "ValidationFailed", "validate"]

SO_ORIGINAL_DST = 80


class ValidationFailed(MeshctlError):
    exit_code = ExitCode.VALIDATION_FAILED


def validate(config: CaptureConfig, host_ip: str, probe_port: int, timeout: float) -> None:
    """Return once a probe connection arrives redirected; ValidationFailed after `timeout`."""
    ipv6 = ipaddress.ip_address(host_ip).version == 6
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    loopback, target = ("::1", "::6") if ipv6 else ("127.0.0.1", "127.0.0.6")
    deadline = time.monotonic() + timeout
    with ExitStack() as stack:
        listeners = []
        for port in (config.proxy_port, config.inbound_capture_port):
            listener = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((loopback, int(port)))
            except (OSError, ValueError) as exc:
                raise MeshctlError(f"validation cannot listen on {loopback} port {port}: {exc}") from None
            listener.listen(8)
            listeners.append(listener)
        while time.monotonic() < deadline:
            with socket.socket(family, socket.SOCK_STREAM) as client:
                client.settimeout(1)
                client.bind((loopback, 0))
                try:
                    client.connect((target, probe_port))
                except OSError:
                    time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
                    continue
                ready, _, _ = select.select(listeners, [], [], max(0.0, deadline - time.monotonic()))
                for listener in ready:
                    accepted, _ = listener.accept()
                    with accepted:
                        if _original_port(accepted, ipv6) == probe_port:
                            return
    raise ValidationFailed(
        f"iptables validation failed: a connection to {target} port {probe_port} was not redirected to "
        f"{loopback} port {config.inbound_capture_port} within {timeout:g}s; the rules are missing, or this "
        f"process is not the proxy (UID {config.proxy_uid})")


def _original_port(connection: socket.socket, ipv6: bool) -> int:
    """The destination port before REDIRECT rewrote it (SO_ORIGINAL_DST)."""
    level = socket.IPPROTO_IPV6 if ipv6 else socket.SOL_IP
    raw = connection.getsockopt(level, SO_ORIGINAL_DST, 28 if ipv6 else 16)
    port: int = struct.unpack_from("!H", raw, 2)[0]
    return port
