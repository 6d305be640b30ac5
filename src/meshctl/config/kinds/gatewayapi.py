"""The Kubernetes Gateway API (gateway.networking.k8s.io) as Istio reads it: Gateway, HTTPRoute,
GRPCRoute, TCPRoute, TLSRoute, ReferenceGrant and GatewayClass.

Field lists follow the API's v1 types (the beta and alpha versions Istio reads share them), so
a typo is an error, as the API server's structural schema makes it. Parts Istio does not
translate (infrastructure, session persistence, extension references) are accepted and left
out of the views; what the API server would default (`PathPrefix /`, weight 1, status 302) is
the views' default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshctl.config.kinds.common import ANY_DURATION, DURATION, PORT, Nanos
from meshctl.config.kinds.kubernetes import LabelSelector
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, Int, List, Map, Report, Str

__all__ = [
    "AllowedRoutes",
    "BackendFilter",
    "BackendObjectReference",
    "BackendRef",
    "CORS",
    "Fraction",
    "FrontendValidation",
    "GROUP",
    "GRPCMethodMatch",
    "GRPCRoute",
    "GRPCRouteFilter",
    "GRPCRouteMatch",
    "GRPCRouteRule",
    "Gateway",
    "GatewayAddress",
    "GatewayBackendTLS",
    "GatewayClass",
    "GatewaySpecTLS",
    "GatewayTLSConfig",
    "HTTPHeader",
    "HTTPRoute",
    "HTTPRouteFilter",
    "HTTPRouteMatch",
    "HTTPRouteRule",
    "HeaderModifier",
    "L4RouteRule",
    "Listener",
    "ParentReference",
    "PathMatch",
    "PathModifier",
    "ReferenceGrant",
    "ReferenceGrantFrom",
    "ReferenceGrantTo",
    "RequestMirror",
    "RequestRedirect",
    "Retry",
    "RouteGroupKind",
    "RouteNamespaces",
    "SecretReference",
    "TCPRoute",
    "TLSRoute",
    "Timeouts",
    "URLRewrite",
    "ValueMatch",
]

GROUP = "gateway.networking.k8s.io"
_NAME = Str(min_len=1)


@message(required=["name"])
class ParentReference(Message):
    """A route's parent: a Gateway (a listener of it, by `sectionName` or `port`), or for the
    mesh (GAMMA) a Service."""

    group: str = field(default=GROUP)
    kind: str = field(default="Gateway")
    namespace: str = ""
    name: str = field(_NAME)
    section_name: str = ""
    port: int | None = field(PORT)


@message(required=["name"])
class HTTPHeader(Message):
    name: str = field(_NAME)
    value: str = ""


@message
class HeaderModifier(Message):
    set: tuple[HTTPHeader, ...]
    add: tuple[HTTPHeader, ...]
    remove: tuple[str, ...]


@message(required=["type"])
class PathModifier(Message):
    type: str = field(Enum("ReplaceFullPath", "ReplacePrefixMatch"))
    replace_full_path: str | None = None
    replace_prefix_match: str | None = None


@message(required=["type"], free=["extensionRef", "requestMirror", "requestRedirect", "urlRewrite", "cors"])
class BackendFilter(Message):
    """A filter of one backend: Istio applies the header modifiers there (others are errors)."""

    type: str = field(Str(min_len=1))
    request_header_modifier: HeaderModifier | None = None
    response_header_modifier: HeaderModifier | None = None


@message(required=["name"])
class BackendRef(Message):
    group: str = ""
    kind: str = field(default="Service")
    namespace: str = ""
    name: str = field(_NAME)
    port: int | None = field(PORT)
    weight: int = field(Int(0, 1_000_000), default=1)
    filters: tuple[BackendFilter, ...] = ()


@message
class RequestRedirect(Message):
    scheme: str = field(Enum("http", "https"))
    hostname: str = ""
    path: PathModifier | None = None
    port: int | None = field(PORT)
    status_code: int = field(Int(300, 399), default=302)


@message
class URLRewrite(Message):
    hostname: str = ""
    path: PathModifier | None = None


def _fraction_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    numerator, denominator = value.get("numerator"), value.get("denominator", 100)
    if isinstance(numerator, int) and isinstance(denominator, int) and numerator > denominator:
        report((*path, "numerator"), "numerator must be less than or equal to denominator")


@message(required=["numerator"], rules=[_fraction_rule])
class Fraction(Message):
    numerator: int = field(Int(0, 1_000_000))
    denominator: int = field(Int(1, 1_000_000), default=100)


@message(required=["name"])
class BackendObjectReference(Message):
    """A backend without a weight or filters (what a mirror sends to)."""

    group: str = ""
    kind: str = field(default="Service")
    namespace: str = ""
    name: str = field(_NAME)
    port: int | None = field(PORT)


@message(required=["backendRef"])
class RequestMirror(Message):
    backend_ref: BackendObjectReference
    percent: int | None = field(Int(0, 100))
    fraction: Fraction | None = None


@message
class CORS(Message):
    allow_origins: tuple[str, ...]
    allow_credentials: bool | None = None
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: int | None = field(Int(0, 2**31 - 1))


_FILTER_TYPES = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror",
                 "CORS", "ExtensionRef")


@message(required=["type"], free=["extensionRef", "externalAuth"])
class HTTPRouteFilter(Message):
    type: str = field(Enum(*_FILTER_TYPES, "ExternalAuth"))
    request_header_modifier: HeaderModifier | None = None
    response_header_modifier: HeaderModifier | None = None
    request_redirect: RequestRedirect | None = None
    url_rewrite: URLRewrite | None = None
    request_mirror: RequestMirror | None = None
    cors: CORS | None = None


@message
class PathMatch(Message):
    type: str = field(Enum("Exact", "PathPrefix", "RegularExpression"), default="PathPrefix")
    value: str = field(default="/")


@message(required=["name", "value"])
class ValueMatch(Message):
    """A header or query parameter match."""

    type: str = field(Enum("Exact", "RegularExpression"), default="Exact")
    name: str = field(_NAME)
    value: str = ""


@message
class HTTPRouteMatch(Message):
    path: PathMatch | None = None
    headers: tuple[ValueMatch, ...]
    query_params: tuple[ValueMatch, ...]
    method: str = field(Enum("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))


@message
class Timeouts(Message):
    """How long a request may take, and each try of it (0s: no limit)."""

    request: Nanos | None = field(ANY_DURATION)
    backend_request: Nanos | None = field(ANY_DURATION)


@message
class Retry(Message):
    codes: tuple[int, ...] = field(List(Int(400, 599)))
    attempts: int | None = field(Int(0, 2**31 - 1))
    backoff: Nanos | None = field(DURATION)


@message(free=["sessionPersistence"])
class HTTPRouteRule(Message):
    name: str = ""
    matches: tuple[HTTPRouteMatch, ...]
    filters: tuple[HTTPRouteFilter, ...]
    backend_refs: tuple[BackendRef, ...]
    timeouts: Timeouts | None = None
    retry: Retry | None = None


@message
class HTTPRoute(Message):
    parent_refs: tuple[ParentReference, ...]
    hostnames: tuple[str, ...]
    rules: tuple[HTTPRouteRule, ...]


@message
class GRPCMethodMatch(Message):
    type: str = field(Enum("Exact", "RegularExpression"), default="Exact")
    service: str = ""
    method: str = ""


@message
class GRPCRouteMatch(Message):
    method: GRPCMethodMatch | None = None
    headers: tuple[ValueMatch, ...]


@message(required=["type"], free=["extensionRef"])
class GRPCRouteFilter(Message):
    type: str = field(Enum("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"))
    request_header_modifier: HeaderModifier | None = None
    response_header_modifier: HeaderModifier | None = None
    request_mirror: RequestMirror | None = None


@message(free=["sessionPersistence"])
class GRPCRouteRule(Message):
    name: str = ""
    matches: tuple[GRPCRouteMatch, ...]
    filters: tuple[GRPCRouteFilter, ...]
    backend_refs: tuple[BackendRef, ...]


@message
class GRPCRoute(Message):
    parent_refs: tuple[ParentReference, ...]
    hostnames: tuple[str, ...]
    rules: tuple[GRPCRouteRule, ...]


@message
class L4RouteRule(Message):
    name: str = ""
    backend_refs: tuple[BackendRef, ...]


@message(required=["rules"])
class TCPRoute(Message):
    parent_refs: tuple[ParentReference, ...]
    rules: tuple[L4RouteRule, ...]


@message(required=["rules"])
class TLSRoute(Message):
    parent_refs: tuple[ParentReference, ...]
    hostnames: tuple[str, ...]
    rules: tuple[L4RouteRule, ...]


@message(required=["name"])
class SecretReference(Message):
    group: str = ""
    kind: str = field(default="Secret")
    name: str = field(_NAME)
    namespace: str = ""


@message
class FrontendValidation(Message):
    ca_certificate_refs: tuple[SecretReference, ...]


@message
class GatewayTLSConfig(Message):
    mode: str = field(Enum("Terminate", "Passthrough"), default="Terminate")
    certificate_refs: tuple[SecretReference, ...]
    options: Mapping[str, str] = field(Map(Str()))
    frontend_validation: FrontendValidation | None = None


@message
class RouteNamespaces(Message):
    from_: str = field(Enum("All", "Same", "Selector", "None"), default="Same")
    selector: LabelSelector | None = None


@message
class RouteGroupKind(Message):
    group: str = field(default=GROUP)
    kind: str = field(_NAME)


@message
class AllowedRoutes(Message):
    namespaces: RouteNamespaces | None = None
    kinds: tuple[RouteGroupKind, ...]


_PROTOCOLS = ("HTTP", "HTTPS", "TLS", "TCP", "UDP", "HBONE", "istio.io/PROXY")


def _listener_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    protocol = value.get("protocol")
    if protocol in ("HTTPS", "TLS") and value.get("tls") is None:
        report((*path, "tls"), f"a {protocol} listener needs tls (Istio makes no server of it)")


@message(required=["name", "port", "protocol"], rules=[_listener_rule])
class Listener(Message):
    name: str = field(_NAME)
    hostname: str = ""
    port: int = field(PORT)
    protocol: str = field(Str(min_len=1))
    tls: GatewayTLSConfig | None = None
    allowed_routes: AllowedRoutes | None = None


@message(required=["value"])
class GatewayAddress(Message):
    type: str = field(default="IPAddress")
    value: str = field(_NAME)


def _listener_names_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    seen: set[str] = set()
    for index, listener in enumerate(value):
        name = listener.get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            report((*path, index, "name"), f"duplicate listener name {name!r}")
        seen.add(name)


@message
class GatewayBackendTLS(Message):
    client_certificate_ref: SecretReference | None = None


@message(free=["frontend"])
class GatewaySpecTLS(Message):
    """The Gateway's own TLS settings (Gateway API 1.4): the certificate it shows backends."""

    backend: GatewayBackendTLS | None = None


@message(required=["gatewayClassName", "listeners"], free=["infrastructure", "backendTLS", "allowedListeners"])
class Gateway(Message):
    gateway_class_name: str = field(_NAME)
    listeners: tuple[Listener, ...] = field(List(Listener.SCHEMA, min_items=1, rules=[_listener_names_rule]))
    addresses: tuple[GatewayAddress, ...]
    tls: GatewaySpecTLS | None = None


@message(required=["controllerName"], free=["parametersRef"])
class GatewayClass(Message):
    controller_name: str = field(_NAME)
    description: str = ""


@message(required=["kind", "namespace"])
class ReferenceGrantFrom(Message):
    group: str = ""
    kind: str = field(_NAME)
    namespace: str = field(_NAME)


@message(required=["kind"])
class ReferenceGrantTo(Message):
    group: str = ""
    kind: str = field(_NAME)
    name: str = ""


@message(required=["from", "to"])
class ReferenceGrant(Message):
    from_: tuple[ReferenceGrantFrom, ...] = field(List(ReferenceGrantFrom.SCHEMA, min_items=1))
    to: tuple[ReferenceGrantTo, ...] = field(List(ReferenceGrantTo.SCHEMA, min_items=1))

