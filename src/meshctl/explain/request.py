"""The request `meshctl explain` follows: a connection (addresses, transport, TLS) and, for
HTTP, the request line and headers, as the proxy receives them.

The user writes a URL and a few flags; `parse_request` turns them into one immutable value with
everything Envoy looks at decided up front: the destination port, whether the bytes on the wire
are plaintext, TLS or Istio mTLS (which decides the transport protocol and ALPN the listener
filters report), the SNI, and the HTTP pseudo-headers. The destination address may stay unknown
(a host name the caller cannot resolve): `explain.address` resolves it against the mesh, and
says so when it cannot.
"""

from __future__ import annotations

import enum
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

from meshctl.config.values import is_ip
from meshctl.errors import UsageError

__all__ = ["Direction", "Request", "Transport", "parse_request"]

# What a sidecar sends to a peer sidecar in Istio mTLS, by application protocol (translation-spec §2.5).
ISTIO_HTTP11_ALPN = ("istio-http/1.1", "istio", "http/1.1")
ISTIO_H2_ALPN = ("istio-h2", "istio", "h2")
ISTIO_TCP_ALPN = ("istio-peer-exchange", "istio")
DEFAULT_SOURCE_IP = "10.244.255.254"
_SCHEMES = {"http": 80, "https": 443, "tcp": 0, "tls": 0, "grpc": 80}


class Direction(enum.StrEnum):
    """Outbound: the proxy's own workload calls out (captured to 15001). Inbound: the call
    arrives at the proxy's workload (captured to 15006)."""

    outbound = "outbound"
    inbound = "inbound"


class Transport(enum.StrEnum):
    """What the proxy sees on the connection: plaintext, TLS from the application, or Istio
    mutual TLS from a peer sidecar (client certificate, Istio ALPN)."""

    plaintext = "plaintext"
    tls = "tls"
    mtls = "mtls"


@dataclass(frozen=True, slots=True)
class Request:
    """One connection, and the HTTP request on it when `http` is set.

    `address` is the destination IP the connection goes to, or "" while unknown; `host` is the
    name in the URL (the HTTP authority without a port). Header names are lower case, in the
    order given; a repeated header keeps every value, as Envoy does.
    """

    direction: Direction
    host: str
    port: int
    address: str
    transport: Transport
    http: bool
    http2: bool = False
    method: str = "GET"
    path: str = "/"
    scheme: str = "http"
    authority: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    sni: str = ""
    alpn: tuple[str, ...] = ()
    source_ip: str = DEFAULT_SOURCE_IP
    source_port: int = 54321
    principal: str = ""
    url: str = ""

    @property
    def protocol(self) -> str:
        """`HTTP/1.1`, `HTTP/2` or `TCP`, for showing."""
        if not self.http:
            return "TCP"
        return "HTTP/2" if self.http2 else "HTTP/1.1"

    def header_values(self, name: str) -> list[str]:
        """Every value of a header (pseudo-headers included), in order."""
        name = name.lower()
        pseudo = {":method": self.method, ":path": self.path, ":authority": self.authority, ":scheme": self.scheme}
        if name in pseudo:
            return [pseudo[name]] if self.http else []
        if name == "host":
            return [self.authority] if self.http else []
        return [value for key, value in self.headers if key == name]

    def with_address(self, address: str) -> Request:
        from dataclasses import replace

        return replace(self, address=address)

    def with_port(self, port: int) -> Request:
        from dataclasses import replace

        return replace(self, port=port)


def parse_request(
    url: str,
    *,
    method: str = "GET",
    headers: Sequence[str] = (),
    direction: Direction = Direction.outbound,
    port: int | None = None,
    address: str | None = None,
    source_ip: str | None = None,
    transport: Transport | None = None,
    sni: str | None = None,
    alpn: Sequence[str] = (),
    http2: bool = False,
    principal: str = "",
) -> Request:
    """The request a URL and the command line's flags describe; UsageError for what cannot be one.

    `http://` and `grpc://` (HTTP/2) carry HTTP; `https://` is HTTP inside TLS the application
    made (so the proxy sees only TLS and its SNI); `tcp://` and `tls://` are opaque bytes. The
    transport defaults to plaintext, TLS for `https://` and `tls://`, and Istio mTLS for an
    inbound call (what a peer sidecar sends).
    """
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    scheme = parsed.scheme.lower()
    if scheme not in _SCHEMES:
        raise UsageError(f"--url: unsupported scheme {parsed.scheme!r}; use http, https, grpc, tcp or tls")
    host = (parsed.hostname or "").lower()
    if not host:
        raise UsageError(f"--url: {url!r} names no host")
    try:
        url_port = parsed.port
    except ValueError:
        raise UsageError(f"--url: {url!r} has an invalid port") from None
    dest_port = port if port is not None else url_port if url_port is not None else _SCHEMES[scheme]
    if not 0 < dest_port < 65536:
        raise UsageError(f"--url: {url!r} names no port; give one in the URL or with --port")
    app_tls = scheme in ("https", "tls")
    if transport is None:
        transport = Transport.tls if app_tls else Transport.mtls if direction is Direction.inbound else Transport.plaintext
    if app_tls and transport is Transport.plaintext:
        raise UsageError(f"--url: {scheme}:// is TLS; it cannot be sent as plaintext")
    http = scheme in ("http", "https", "grpc")
    is_h2 = http2 or scheme == "grpc"
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    header_pairs = tuple(_header(text) for text in headers)
    if scheme == "grpc" and not any(name == "content-type" for name, _ in header_pairs):
        header_pairs += (("content-type", "application/grpc"),)
    authority = host if url_port is None else f"{host}:{url_port}"
    for name, value in header_pairs:
        if name == "host":
            authority = value
    header_pairs = tuple((name, value) for name, value in header_pairs if name != "host")
    if address is not None and not is_ip(address):
        raise UsageError(f"--address: {address!r} is not an IP address")
    if address is None and is_ip(host):
        address = host
    if source_ip is not None and not is_ip(source_ip):
        raise UsageError(f"--from-ip: {source_ip!r} is not an IP address")
    server_name = ""
    if transport is not Transport.plaintext:
        server_name = sni if sni is not None else ("" if is_ip(host) else host)
    return Request(
        direction=direction,
        host=host,
        port=dest_port,
        address=address or "",
        transport=transport,
        http=http,
        http2=is_h2,
        method=method.upper(),
        path=path,
        scheme="https" if scheme == "https" else "http",
        authority=authority,
        headers=header_pairs,
        sni=server_name,
        alpn=_alpn(transport, http, is_h2, alpn),
        source_ip=source_ip or DEFAULT_SOURCE_IP,
        principal=principal,
        url=url,
    )


def _alpn(transport: Transport, http: bool, http2: bool, given: Sequence[str]) -> tuple[str, ...]:
    """The ALPN list of the TLS ClientHello: given, else what the client would offer."""
    if given:
        return tuple(given)
    if transport is Transport.mtls:
        if not http:
            return ISTIO_TCP_ALPN
        return ISTIO_H2_ALPN if http2 else ISTIO_HTTP11_ALPN
    if transport is Transport.tls and http:
        return ("h2", "http/1.1") if http2 else ("http/1.1",)
    return ()


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c.isspace() for c in name):
        raise UsageError(f"-H: {text!r} is not 'name: value'")
    return name.lower(), value.strip()
