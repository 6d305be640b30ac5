"""Reading typed configs (`Any`s) of Envoy messages, by type rather than by filter name."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pool, message_factory

from meshctl.inspect.configdump import known_type

__all__ = ["HCM", "HTTP_INSPECTOR", "HTTP_RBAC", "NETWORK_RBAC", "ORIGINAL_DST", "TCP_PROXY", "TLS_INSPECTOR", "type_name", "unpack"]

HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
NETWORK_RBAC = "envoy.extensions.filters.network.rbac.v3.RBAC"
HTTP_RBAC = "envoy.extensions.filters.http.rbac.v3.RBAC"
HTTP_RBAC_PER_ROUTE = "envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
HTTP_FAULT = "envoy.extensions.filters.http.fault.v3.HTTPFault"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
TLS_INSPECTOR = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
HTTP_INSPECTOR = "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"
ORIGINAL_DST = "envoy.extensions.filters.listener.original_dst.v3.OriginalDst"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
JWT_AUTHN = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
EXT_AUTHZ = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"


def type_name(value: Any) -> str:
    """The message name an `Any` holds (`envoy.extensions...HttpConnectionManager`)."""
    return str(value.type_url).rsplit("/", 1)[-1]


def unpack(value: Any) -> Any | None:
    """The `Any` as a message of its own type, or None when this process does not know the type
    (an Istio-only filter, a newer Envoy extension)."""
    name = type_name(value)
    if not name or not known_type(name):
        return None
    descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
    message = message_factory.GetMessageClass(descriptor)()
    message.ParseFromString(value.value)
    return message
