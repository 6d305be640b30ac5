"""Port protocols as Istio infers them from port names, appProtocol and well-known ports."""

from __future__ import annotations

__all__ = [
    "GRPC",
    "GRPC_WEB",
    "H2_FAMILY",
    "HTTP",
    "HTTP2",
    "HTTPS",
    "HTTP_FAMILY",
    "HTTP_PROXY",
    "MONGO",
    "MYSQL",
    "REDIS",
    "TCP",
    "TCP_FAMILY",
    "TLS",
    "TLS_FAMILY",
    "UDP",
    "UNSUPPORTED",
    "from_kubernetes_port",
    "known",
    "listener_class",
    "parse",
]

HTTP = "HTTP"
HTTP2 = "HTTP2"
HTTPS = "HTTPS"
GRPC = "GRPC"
GRPC_WEB = "GRPC-Web"
HTTP_PROXY = "HTTP_PROXY"
TCP = "TCP"
TLS = "TLS"
UDP = "UDP"
MONGO = "Mongo"
REDIS = "Redis"
MYSQL = "MySQL"
UNSUPPORTED = "UnsupportedProtocol"

_BY_NAME = {
    "http": HTTP,
    "http2": HTTP2,
    "https": HTTPS,
    "grpc": GRPC,
    "grpc-web": GRPC_WEB,
    "http_proxy": HTTP_PROXY,
    "tcp": TCP,
    "tls": TLS,
    "udp": UDP,
    "mongo": MONGO,
    "redis": REDIS,
    "mysql": MYSQL,
}
_APP_PROTOCOLS = {"kubernetes.io/h2c": HTTP2, "kubernetes.io/ws": HTTP, "kubernetes.io/wss": HTTPS}
_WELL_KNOWN_TCP = {25, 53, 3306, 27017}

HTTP_FAMILY = frozenset({HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC_WEB})
H2_FAMILY = frozenset({HTTP2, GRPC, GRPC_WEB})
TCP_FAMILY = frozenset({TCP, HTTPS, TLS, MONGO, REDIS, MYSQL})
TLS_FAMILY = frozenset({HTTPS, TLS})


def known(value: str | None) -> bool:
    """Whether a protocol name is one Istio knows (an empty one is not)."""
    return bool(value) and parse(value) != UNSUPPORTED  # type: ignore[arg-type]


def parse(value: str) -> str:
    """A protocol name as written in a ServiceEntry, Sidecar or Gateway port (case-insensitive)."""
    return _BY_NAME.get(value.lower(), UNSUPPORTED) if value else UNSUPPORTED


def from_kubernetes_port(name: str, port: int, protocol: str = "TCP", app_protocol: str = "") -> str:
    """Istio's rules for a Kubernetes Service port (translation-spec §2.5)."""
    if protocol == "UDP":
        return UDP
    if protocol == "SCTP":
        return UNSUPPORTED
    if app_protocol:
        special = _APP_PROTOCOLS.get(app_protocol)
        if special:
            return special
        name = app_protocol
    lowered = name.lower()
    if lowered.startswith("grpc-web"):
        return GRPC_WEB
    prefix = lowered.split("-", 1)[0]
    found = _BY_NAME.get(prefix)
    if found:
        return found
    return TCP if port in _WELL_KNOWN_TCP else UNSUPPORTED


def listener_class(protocol: str) -> str:
    """`HTTP`, `TCP` or `AUTO` (sniffed): which kind of outbound listener a port gets."""
    if protocol in HTTP_FAMILY:
        return "HTTP"
    if protocol in TCP_FAMILY:
        return "TCP"
    return "AUTO"
