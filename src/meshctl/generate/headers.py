"""The header knobs of a proxy's HTTP connection managers, router filters and virtual hosts:
its ProxyConfig's `proxyHeaders`, read as istiod reads them (util.GetProxyHeaders).

What a proxy runs with is its own ProxyConfig (`Proxy.proxy_headers`: its PROXY_CONFIG, the
mesh's `defaultConfig` with its pod's annotation over it), else the mesh's `defaultConfig`. One
setting depends on the kind of listener: the `server` header is `istio-envoy` on inbound and
gateway connection managers, while sidecar outbound ones leave Envoy's own (`envoy`); a custom
value applies to all three, and `server.disabled` leaves the name unset and passes the
upstream's `server` header through.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from envoy.config.core.v3 import protocol_pb2
from envoy.extensions.http.header_formatters.preserve_case.v3 import preserve_case_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from meshctl.config.kinds.mesh import IN_MESH, MeshConfig, ProxyHeaders
from meshctl.model.proxy import Proxy

__all__ = ["GATEWAY", "HeaderPolicy", "SERVER_NAME", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND",
           "header_policy", "preserve_case_options"]

SERVER_NAME = "istio-envoy"
"""The `server` header istiod gives inbound and gateway connection managers."""
SIDECAR_OUTBOUND = "outbound"
SIDECAR_INBOUND = "inbound"
GATEWAY = "gateway"
"""Istio's listener classes, as far as proxyHeaders tell them apart."""

_HCM = hcm_pb2.HttpConnectionManager


@dataclass(frozen=True, slots=True)
class HeaderPolicy:
    """What a proxy's `proxyHeaders` ask of its HTTP config, Istio's defaults where they say
    nothing. Hashable: cache keys of what reads it hold it.

    `server` is the custom `server` value ("" for the default); `forward_client_cert` the
    inbound XFCC mode (Envoy's enum); `cert_details` the inbound `set_current_client_cert_details`
    as (subject, uri, dns, cert, chain); `attempt_count` whether virtual hosts add
    `x-envoy-attempt-count`; `request_id` whether connection managers make `x-request-id`;
    `suppress_debug` whether routers leave out their `x-envoy-*` headers; `mx_in_mesh`
    whether outbound metadata exchange keeps its headers from clusters outside the mesh;
    `preserve_case` whether HTTP/1 header names keep their case, downstream (every connection
    manager) and upstream (the clusters of HTTP and sniffed ports): `preserve_case_options`.
    """

    server: str = ""
    server_disabled: bool = False
    forward_client_cert: int = _HCM.APPEND_FORWARD
    cert_details: tuple[bool, bool, bool, bool, bool] = (True, True, True, False, False)
    attempt_count: bool = True
    request_id: bool = True
    suppress_debug: bool = False
    mx_in_mesh: bool = False
    preserve_case: bool = False

    def server_name(self, listener_class: str) -> str:
        """The connection manager's `server_name` ("" leaves Envoy's default, `envoy`)."""
        if self.server_disabled:
            return ""
        if self.server:
            return self.server
        return "" if listener_class == SIDECAR_OUTBOUND else SERVER_NAME

    def apply(self, manager: hcm_pb2.HttpConnectionManager, listener_class: str) -> None:
        """Set what every class of connection manager takes of the policy: `server` and
        request ids (the router's debug headers are the HTTP filters'; XFCC is inbound's)."""
        name = self.server_name(listener_class)
        if name:
            manager.server_name = name
        if self.server_disabled:
            manager.server_header_transformation = _HCM.PASS_THROUGH
        if not self.request_id:
            manager.generate_request_id.value = False

    def set_client_cert(self, manager: hcm_pb2.HttpConnectionManager) -> None:
        """The inbound XFCC mode and the parts of the client certificate it sets."""
        manager.forward_client_cert_details = self.forward_client_cert
        subject, uri, dns, cert, chain = self.cert_details
        details = manager.set_current_client_cert_details
        details.subject.value = subject
        details.uri = uri
        details.dns = dns
        details.cert = cert
        details.chain = chain


DEFAULT_POLICY = HeaderPolicy()


def header_policy(proxy: Proxy, mesh: MeshConfig) -> HeaderPolicy:
    """The policy the proxy's own ProxyConfig gives, else the mesh's `defaultConfig`."""
    headers = proxy.proxy_headers if proxy.proxy_headers is not None else mesh.default_config.view.proxy_headers
    return DEFAULT_POLICY if headers is None else _policy(headers)


@functools.lru_cache(maxsize=256)
def _policy(headers: ProxyHeaders) -> HeaderPolicy:
    server = headers.server
    details = headers.set_current_client_cert_details
    mode = headers.forwarded_client_cert
    return HeaderPolicy(
        server=server.value if server is not None and not server.disabled else "",
        server_disabled=server is not None and server.disabled,
        forward_client_cert=_HCM.ForwardClientCertDetails.Value(mode) if mode and mode != "UNDEFINED"
        else _HCM.APPEND_FORWARD,
        cert_details=DEFAULT_POLICY.cert_details if details is None else (
            details.subject is not False, details.uri is not False, details.dns is not False,
            details.cert is True, details.chain is True),
        attempt_count=not (headers.attempt_count is not None and headers.attempt_count.disabled),
        request_id=not (headers.request_id is not None and headers.request_id.disabled),
        suppress_debug=headers.envoy_debug_headers is not None and headers.envoy_debug_headers.disabled,
        mx_in_mesh=headers.metadata_exchange_headers is not None and headers.metadata_exchange_headers.mode == IN_MESH,
        preserve_case=headers.preserve_http1_header_case,
    )


def preserve_case_options(options: protocol_pb2.Http1ProtocolOptions) -> None:
    """Make `options` what `preserveHttp1HeaderCase` gives, in place of whatever they held (as
    istiod replaces them, `accept_http_10` included): Envoy's `preserve_case` stateful header
    formatter, its config left empty (an Any naming the type alone, as Istio writes it)."""
    options.Clear()
    formatter = options.header_key_format.stateful_formatter
    formatter.name = "preserve_case"
    formatter.typed_config.Pack(preserve_case_pb2.PreserveCaseFormatterConfig())
