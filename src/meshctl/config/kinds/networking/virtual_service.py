"""VirtualService: how requests to a set of hosts are routed (HTTP, TLS by SNI, plain TCP)."""

from __future__ import annotations

import http
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any

from meshctl.config.kinds.common import (
    EXPORT_TO,
    INT32,
    IP_OR_CIDR,
    JWT_CLAIM_PREFIXES,
    LABELS,
    POSITIVE_INT32,
    STRICT_DURATION,
    UINT32,
    Nanos,
    Percent,
    domain_problem,
    header_name_problem,
)
from meshctl.config.kinds.networking.fields import (
    GATEWAY_NAMES,
    NAMESPACE,
    PORT_OR_ZERO,
    Destination,
)
from meshctl.config.kinds.networking.http import (
    ORIGIN_MATCH,
    Headers,
    HTTPMatchRequest,
    StringMatch,
    regex_text_problem,
)
from meshctl.config.messages import Message, Parse, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, Int, List, Report, Str
from meshctl.config.values import is_ip, parse_duration, parse_proto_bytes
from meshctl.hostnames import intersects, matches

__all__ = [
    "Abort",
    "Base64",
    "CorsPolicy",
    "Delay",
    "Delegate",
    "FAULT_PERCENT",
    "HTTPBody",
    "HTTPDirectResponse",
    "HTTPFaultInjection",
    "HTTPMirrorPolicy",
    "HTTPRedirect",
    "HTTPRetry",
    "HTTPRewrite",
    "HTTPRoute",
    "HTTPRouteDestination",
    "L4MatchAttributes",
    "MAX_DIRECT_RESPONSE_BODY",
    "MIRROR_PERCENT",
    "RegexRewrite",
    "RouteDestination",
    "TCPRoute",
    "TLSMatchAttributes",
    "TLSRoute",
    "VirtualService",
    "binds_to_mesh",
    "gateway_reference",
]

MAX_DIRECT_RESPONSE_BODY = 1024 * 1024


def gateway_reference(name: str, namespace: str) -> tuple[str, str]:
    """The (namespace, name) a VirtualService means by a gateway name written in `namespace`.

    `ns/name` is explicit, a bare `name` lives in the VirtualService's namespace, and the legacy
    `name.ns.svc.cluster.local` form is read as Istio reads it.
    """
    ns, slash, short = name.partition("/")
    if slash:
        return ns, short
    if "." in name:
        parts = name.split(".")
        return parts[1], parts[0]
    return namespace, name


def binds_to_mesh(gateways: Sequence[str]) -> bool:
    """A VirtualService without gateways, or one listing `mesh`, applies to sidecars."""
    return not gateways or "mesh" in gateways

# --- destinations ----------------------------------------------------------------------------------


def _total_weight_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    if len(value) > 1 and sum(item.get("weight") or 0 for item in value) == 0:
        report(path, "the weights of the destinations add up to 0; give at least one a positive weight")


@message(required=["destination"])
class HTTPRouteDestination(Message):
    """One weighted destination of an HTTP route, with header changes of its own."""

    destination: Destination
    weight: int = field(POSITIVE_INT32)
    headers: Headers | None = None


@message(required=["destination"])
class RouteDestination(Message):
    """One weighted destination of a TLS or TCP route."""

    destination: Destination
    weight: int = field(POSITIVE_INT32)

# --- redirects, direct responses, rewrites -------------------------------------------------------


def _redirect_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    targets = ("uri", "prefixRewrite", "authority", "scheme")
    if not any(value.get(key) for key in targets) and value.get("port") is None \
            and value.get("derivePort") is None:
        report(path, "redirect must set at least one of uri, prefixRewrite, authority, scheme, port or derivePort")
    code = value.get("redirectCode")
    if code and not 300 <= code <= 399:
        report((*path, "redirectCode"), f"redirect code {code} is not a 3xx code")
    scheme = value.get("scheme")
    if scheme and scheme not in ("http", "https"):
        report((*path, "scheme"), f"invalid redirect scheme {scheme!r}: use 'http' or 'https'")


@message(oneof=[("port", "derivePort"), ("uri", "prefixRewrite")], rules=[_redirect_rule])
class HTTPRedirect(Message):
    """`port` is None when not given; `derive_port` "" when not given."""

    uri: str = ""
    prefix_rewrite: str = ""
    authority: str = ""
    port: int | None = field(PORT_OR_ZERO)
    derive_port: str = field(Enum("FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"))
    scheme: str = ""
    redirect_code: int = field(UINT32)


def _status_problem(status: int) -> str | None:
    if not 200 <= status <= 599:
        return f"HTTP status {status} is not between 200 and 599"
    return None


def _body_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    size = len((value.get("string") or "").encode())
    encoded = value.get("bytes")
    if encoded:
        decoded = parse_proto_bytes(encoded)
        if decoded is None:
            report((*path, "bytes"), "body bytes must be base64")
            return
        size = len(decoded)
    if size > MAX_DIRECT_RESPONSE_BODY:
        report(path, "the response body is larger than 1 MiB")


def _direct_response_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    problem = _status_problem(value["status"])
    if problem:
        report((*path, "status"), problem)


def _base64(text: str) -> bytes:
    return parse_proto_bytes(text) or b""


Base64 = Annotated[bytes, Parse(_base64)]
"""A `bytes` field's view: decoded once when the view is built (validation checked it decodes)."""


@message(oneof=[("string", "bytes")], rules=[_body_rule])
class HTTPBody(Message):
    """One of `string` and `bytes` (decoded) is set, the other is None."""

    string: str | None = None
    bytes_: Base64 | None = field(Str())


@message(required=["status"], rules=[_direct_response_rule])
class HTTPDirectResponse(Message):
    status: int = field(UINT32)
    body: HTTPBody | None = None


@message(required=["name"])
class Delegate(Message):
    """The delegate VirtualService an HTTP route hands its requests to."""

    name: str = field(Str(min_len=1))
    namespace: str = field(NAMESPACE)


def _regex_rewrite_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if not value.get("match") or not value.get("rewrite"):
        report(path, "uriRegexRewrite needs both match and rewrite")
        return
    problem = regex_text_problem(value["match"])
    if problem:
        report((*path, "match"), problem)


def _rewrite_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if not value.get("uri") and value.get("uriRegexRewrite") is None and not value.get("authority"):
        report(path, "rewrite must set uri, uriRegexRewrite or authority")


@message(rules=[_regex_rewrite_rule])
class RegexRewrite(Message):
    match: str = ""
    rewrite: str = ""


@message(oneof=[("uri", "uriRegexRewrite")], rules=[_rewrite_rule])
class HTTPRewrite(Message):
    uri: str = ""
    authority: str = ""
    uri_regex_rewrite: RegexRewrite | None = None

# --- retries, faults, mirrors, CORS --------------------------------------------------------------


_RETRY_ON = frozenset(
    {
        "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
        "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
        "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal",
        "resource-exhausted", "unavailable",
    }
)
_HTTP_STATUS_CODES = frozenset(status.value for status in http.HTTPStatus)


def _retry_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    attempts = value.get("attempts") or 0
    if attempts == 0 and (value.get("perTryTimeout") or value.get("retryOn")
                          or value.get("retryRemoteLocalities") is not None):
        report((*path, "attempts"), "attempts is 0, which turns retries off, yet other retry settings are set")
    retry_on = value.get("retryOn")
    for policy in retry_on.split(",") if retry_on else []:
        if policy not in _RETRY_ON and not (policy.isdigit() and int(policy) in _HTTP_STATUS_CODES):
            report((*path, "retryOn"), f"invalid retryOn condition {policy!r}")


@message(rules=[_retry_rule])
class HTTPRetry(Message):
    """`attempts` 0 turns retries off; the wrapper booleans are None when not given."""

    attempts: int = field(POSITIVE_INT32)
    per_try_timeout: Nanos | None = field(STRICT_DURATION)
    retry_on: str = ""
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: Nanos | None = field(STRICT_DURATION)


def _fault_percentage_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    share = value.get("value") or 0
    if share < 0 or share > 100 or 0 < share < 0.0001:
        report((*path, "value"), f"percentage {share:g} must be 0 or between 0.0001 and 100")


def _mirror_percentage_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    share = value.get("value") or 0
    if not 0 <= share <= 100:
        report((*path, "value"), f"mirror percentage {share:g} must be between 0 and 100")


FAULT_PERCENT = Percent.SCHEMA.extend(rules=[_fault_percentage_rule])
MIRROR_PERCENT = Percent.SCHEMA.extend(rules=[_mirror_percentage_rule])

_GRPC_STATUS_NAMES = frozenset(
    {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)


def _delay_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("exponentialDelay") is not None:
        report((*path, "exponentialDelay"), "exponentialDelay is not supported; use fixedDelay")


def _abort_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    status = value.get("httpStatus")
    if status is not None:
        problem = _status_problem(status)
        if problem:
            report((*path, "httpStatus"), problem)
    grpc = value.get("grpcStatus")
    if grpc is not None and grpc not in _GRPC_STATUS_NAMES:
        report((*path, "grpcStatus"), f"unknown gRPC status {grpc!r}; use a code name such as 'UNAVAILABLE'")
    if value.get("http2Error") is not None:
        report((*path, "http2Error"), "http2Error aborts are not supported")


def _fault_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("abort") is None and value.get("delay") is None:
        report(path, "fault must set delay, abort or both")


@message(oneof=[("fixedDelay", "exponentialDelay")], rules=[_delay_rule])
class Delay(Message):
    """HTTPFaultInjection.Delay: `percent` is the deprecated whole-number share."""

    fixed_delay: Nanos | None = field(STRICT_DURATION)
    exponential_delay: Nanos | None = field(STRICT_DURATION)
    percentage: Percent | None = field(FAULT_PERCENT)
    percent: int = field(Int(0, 100))


@message(oneof=[("httpStatus", "grpcStatus", "http2Error")], rules=[_abort_rule])
class Abort(Message):
    """HTTPFaultInjection.Abort."""

    http_status: int | None = field(INT32)
    grpc_status: str = ""
    http2_error: str = ""
    percentage: Percent | None = field(FAULT_PERCENT)


@message(rules=[_fault_rule])
class HTTPFaultInjection(Message):
    delay: Delay | None = None
    abort: Abort | None = None


@message(required=["destination"])
class HTTPMirrorPolicy(Message):
    destination: Destination
    percentage: Percent | None = field(MIRROR_PERCENT)


_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"})


def _method_rule(value: str, path: FieldPath, report: Report) -> None:
    if value not in _HTTP_METHODS:
        report(path, f"{value!r} is not a supported HTTP method")


def _cors_header_rule(value: str, path: FieldPath, report: Report) -> None:
    problem = None if value == "*" else header_name_problem(value)
    if problem:
        report(path, problem)


def _cors_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    max_age = value.get("maxAge")
    if max_age is not None and (parse_duration(max_age) or 0) % 1_000_000_000:
        report((*path, "maxAge"), "maxAge must be a whole number of seconds")


@message(rules=[_cors_rule])
class CorsPolicy(Message):
    """`allow_origin` (exact origins, deprecated) and `allow_origins` are None when not given:
    translation reads the deprecated list only when the other is absent, even if empty."""

    allow_origin: tuple[str, ...] | None = None
    allow_origins: tuple[StringMatch, ...] | None = field(List(ORIGIN_MATCH))
    allow_methods: tuple[str, ...] = field(List(Str(rules=[_method_rule])))
    allow_headers: tuple[str, ...] = field(List(Str(rules=[_cors_header_rule])))
    expose_headers: tuple[str, ...] = field(List(Str(rules=[_cors_header_rule])))
    max_age: Nanos | None = field(STRICT_DURATION)
    allow_credentials: bool | None = None
    unmatched_preflights: str = field(Enum("UNSPECIFIED", "FORWARD", "IGNORE"))

# --- HTTP routes -----------------------------------------------------------------------------------


def _authority_rewrites(route: dict[str, Any]) -> Iterator[str]:
    """Every place a route rewrites the authority, in the order Istio applies them."""
    rewrite = (route.get("rewrite") or {}).get("authority")
    if rewrite:
        yield rewrite
    request = (route.get("headers") or {}).get("request") or {}
    for operation in ("set", "add"):
        for name, value in (request.get(operation) or {}).items():
            if name.lower() in (":authority", "host"):
                yield value


def _http_route_rule(route: dict[str, Any], path: FieldPath, report: Report) -> None:
    present = {key for key in ("redirect", "directResponse", "fault", "rewrite") if route.get(key) is not None}
    if route.get("route"):
        present.add("route")
    if route.get("delegate") is not None:
        for key in ("redirect", "route"):
            if key in present:
                report((*path, key), f"a route that delegates must not set {key}")
        return
    if "redirect" in present:
        for key in ("route", "fault", "rewrite", "directResponse"):
            if key in present:
                report((*path, key), f"{key} cannot be combined with redirect")
        _prefix_rewrite_rule(route, path, report)
    elif "directResponse" in present:
        for key in ("route", "fault", "rewrite"):
            if key in present:
                report((*path, key), f"{key} cannot be combined with directResponse")
    elif "route" not in present:
        report(path, "the HTTP route needs one of route, redirect, directResponse or delegate")
    authorities = [value for value in _authority_rewrites(route) if value]
    if len(authorities) > 1:
        report((*path, "headers", "request"),
               f"the authority is rewritten more than once ({', '.join(repr(a) for a in authorities)})")


def _prefix_rewrite_rule(route: dict[str, Any], path: FieldPath, report: Report) -> None:
    if not route["redirect"].get("prefixRewrite"):
        return
    for index, match in enumerate(route.get("match") or []):
        uri = match.get("uri") or {}
        if uri.get("exact") or uri.get("regex"):
            report((*path, "match", index, "uri"), "redirect.prefixRewrite needs uri prefix matches")


@message(oneof=[("mirror", "mirrors")], rules=[_http_route_rule])
class HTTPRoute(Message):
    """One HTTP rule: matches, then one of route, redirect, directResponse or delegate.

    `mirror_percent_alias` is the deprecated percentage under its proto name, which Istio's CRD
    also accepts; translation reads `mirror_percent` (`mirrorPercent`) only.
    """

    name: str = ""
    match: tuple[HTTPMatchRequest, ...] = ()
    route: tuple[HTTPRouteDestination, ...] = field(List(HTTPRouteDestination.SCHEMA, rules=[_total_weight_rule]))
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Nanos | None = field(STRICT_DURATION)
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: tuple[HTTPMirrorPolicy, ...] = ()
    mirror_percent: int | None = field(Int(0, 100))
    mirror_percent_alias: int | None = field(Int(0, 100), json="mirror_percent")
    mirror_percentage: Percent | None = field(MIRROR_PERCENT)
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None

# --- TLS and TCP routes ----------------------------------------------------------------------------


@message(required=["sniHosts"])
class TLSMatchAttributes(Message):
    sni_hosts: tuple[str, ...] = field(List(Str(min_len=1)))
    destination_subnets: tuple[str, ...] = field(List(IP_OR_CIDR))
    port: int = field(PORT_OR_ZERO)
    source_labels: Mapping[str, str] = field(LABELS)
    gateways: tuple[str, ...] = field(GATEWAY_NAMES)
    source_namespace: str = field(NAMESPACE)


@message
class L4MatchAttributes(Message):
    destination_subnets: tuple[str, ...] = field(List(IP_OR_CIDR))
    port: int = field(PORT_OR_ZERO)
    source_subnet: str = ""
    source_labels: Mapping[str, str] = field(LABELS)
    gateways: tuple[str, ...] = field(GATEWAY_NAMES)
    source_namespace: str = field(NAMESPACE)


@message(required=["match", "route"])
class TLSRoute(Message):
    match: tuple[TLSMatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = field(List(RouteDestination.SCHEMA, rules=[_total_weight_rule]))


@message(required=["route"])
class TCPRoute(Message):
    match: tuple[L4MatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = field(List(RouteDestination.SCHEMA, rules=[_total_weight_rule]))

# --- VirtualService --------------------------------------------------------------------------------


def _virtual_service_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    hosts = spec.get("hosts") or []
    gateways = spec.get("gateways") or []
    if not (spec.get("http") or spec.get("tcp") or spec.get("tls")):
        report(path, "a VirtualService needs at least one of http, tcp or tls")
    if not hosts:
        _delegate_rule(spec, path, report)
    to_mesh = binds_to_mesh(gateways)
    hosts_valid = _virtual_service_hosts_rule(hosts, to_mesh, path, report)
    if hosts_valid:
        for later, host in enumerate(hosts):
            for earlier in hosts[:later]:
                if intersects(earlier, host):
                    report((*path, "hosts", later), f"duplicate host {host!r}: it overlaps {earlier!r}")
                    break
    _sni_hosts_rule(spec, hosts, path, report)
    if to_mesh:
        _claim_routing_rule(spec, path, report)


def _delegate_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    """A VirtualService without hosts is a delegate: only HTTP routes, no further delegation."""
    for key in ("gateways", "tls", "tcp"):
        if spec.get(key):
            report((*path, key), f"a delegate VirtualService (one without hosts) must not set {key}")
    for index, route in enumerate(spec.get("http") or []):
        if route.get("delegate") is not None:
            report((*path, "http", index, "delegate"), "a delegate VirtualService cannot delegate again")


def _virtual_service_hosts_rule(hosts: list[str], to_mesh: bool, path: FieldPath, report: Report) -> bool:
    valid = True
    for index, host in enumerate(hosts):
        problem = domain_problem(host)
        if problem and not is_ip(host):
            report((*path, "hosts", index), problem)
            valid = False
        elif to_mesh and host == "*":
            report((*path, "hosts", index),
                   "'*' is not allowed as a host of a VirtualService bound to the mesh; name the hosts")
            valid = False
    return valid


def _sni_hosts_rule(spec: dict[str, Any], hosts: list[str], path: FieldPath, report: Report) -> None:
    for route_index, route in enumerate(spec.get("tls") or []):
        for match_index, match in enumerate(route.get("match") or []):
            for index, sni in enumerate(match.get("sniHosts") or []):
                where = (*path, "tls", route_index, "match", match_index, "sniHosts", index)
                problem = domain_problem(sni)
                if problem:
                    if not is_ip(sni):
                        report(where, problem)
                elif not any(matches(host, sni) for host in hosts):
                    report(where, f"SNI host {sni!r} is not covered by any host of the VirtualService")


def _claim_routing_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    for route_index, route in enumerate(spec.get("http") or []):
        for match_index, match in enumerate(route.get("match") or []):
            for key in ("headers", "withoutHeaders"):
                for name in match.get(key) or {}:
                    if name.startswith(JWT_CLAIM_PREFIXES):
                        report((*path, "http", route_index, "match", match_index, key, name),
                               "JWT claim routing only works on gateways; bind the VirtualService to one")


@message(rules=[_virtual_service_rule])
class VirtualService(Message):
    hosts: tuple[str, ...] = field(List(Str(min_len=1)))
    gateways: tuple[str, ...] = field(GATEWAY_NAMES)
    http: tuple[HTTPRoute, ...] = ()
    tls: tuple[TLSRoute, ...] = ()
    tcp: tuple[TCPRoute, ...] = ()
    export_to: tuple[str, ...] = field(EXPORT_TO)
