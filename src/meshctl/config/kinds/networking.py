"""Schemas of Istio's networking kinds, with the semantic rules of Istio's validating webhook.

Field names follow the istio.io/api v1 messages in their JSON (camelCase) form; deprecated
fields that people still write (`mirrorPercent`, `allowOrigin`, `consecutiveErrors`,
`minimumRingSize`, `warmupDurationSecs`) are accepted. v1, v1beta1 and v1alpha3 share one schema:
the versions differ in storage, not in fields.

Each rule sits on the message type it constrains and only runs once that message's shape is
clean, so it can read fields without defending against wrong types. Rules that need to see
several messages at once (a VirtualService's hosts against its gateways, a route against the
VirtualService being a delegate) sit on the enclosing message.
"""

from __future__ import annotations

import http
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from meshctl import protocols
from meshctl.config.kinds.common import (
    ANY_DURATION,
    EXPORT_TO,
    INT32,
    IP_OR_CIDR,
    JWT_CLAIM_PREFIXES,
    LABELS,
    NETWORK_WORKLOAD_SELECTOR,
    PERCENT,
    PORT,
    PORT_SELECTOR,
    POSITIVE_INT32,
    STRICT_DURATION,
    TLS_VERSION,
    UINT32,
    UNIX_PREFIX,
    Nanos,
    WorkloadSelector,
    domain_problem,
    header_name_problem,
    is_istio_label,
    unix_address_problem,
)
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Bool, Enum, Float, Int, List, Map, Obj, Report, Str
from meshctl.config.values import (
    fqdn_problem,
    is_dns1123_label,
    is_ip,
    parse_duration,
    parse_proto_bytes,
    regex_problem,
)
from meshctl.hostnames import intersects, matches

PORT_OR_ZERO = Int(0, 65535)
MAX_REGEX_LENGTH = 1024
MAX_DIRECT_RESPONSE_BODY = 1024 * 1024

# --- protocols and names -------------------------------------------------------------------------

def _protocol_problem(name: str | None) -> str | None:
    """ValidateProtocol: an empty protocol is fine (Istio sniffs it), an unknown one is not."""
    if name and not protocols.known(name):
        return f"unsupported protocol {name!r}"
    return None


def _port_name_rule(value: str, path: FieldPath, report: Report) -> None:
    if not is_istio_label(value):
        report(path, f"invalid port name {value!r}: must be a DNS label")


PORT_NAME = Str(rules=[_port_name_rule])


def _fqdn_only_problem(host: str) -> str | None:
    """Istio's ValidateFQDN: a host name without wildcards whose top-level domain has a letter."""
    problem = fqdn_problem(host, allow_wildcard=False)
    if problem:
        return problem
    return domain_problem(host)


def _domain_rule(value: str, path: FieldPath, report: Report) -> None:
    problem = domain_problem(value)
    if problem:
        report(path, problem)


def _namespace_rule(value: str, path: FieldPath, report: Report) -> None:
    if value and not is_dns1123_label(value):
        report(path, f"invalid namespace {value!r}: must be a lowercase DNS label")


NAMESPACE = Str(rules=[_namespace_rule])


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


def _gateway_name_rule(value: str, path: FieldPath, report: Report) -> None:
    if value == "mesh":
        return
    ns, slash, name = value.partition("/")
    if not slash:
        problem = _fqdn_only_problem(value)
        if problem:
            report(path, f"invalid gateway name {value!r}: {problem}")
        return
    if not ns or not name:
        report(path, f"invalid gateway {value!r}: both namespace and name are needed in namespace/name")
    elif not is_istio_label(ns):
        report(path, f"invalid namespace {ns!r} in gateway {value!r}")
    elif not is_istio_label(name):
        report(path, f"invalid gateway name {name!r} in {value!r}")


GATEWAY_NAMES = List(Str(min_len=1, rules=[_gateway_name_rule]))


def _split_host_port(text: str) -> tuple[str, str] | None:
    """Go's net.SplitHostPort for the forms Istio accepts: `host:port`, `[v6]:port`, `:port`."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return None
        return host, rest[1:]
    host, colon, port = text.rpartition(":")
    if not colon or ":" in host:
        return None
    return host, port


# --- string matches and regexes ------------------------------------------------------------------


def _regex_text_problem(regex: str) -> str | None:
    if not regex:
        return "regex must not be empty"
    if len(regex) > MAX_REGEX_LENGTH:
        return f"regex is longer than {MAX_REGEX_LENGTH} characters"
    return regex_problem(regex)


def _string_match(*, empty_prefix: bool = False, presence_regex: bool = False,
                  required: bool = False) -> Obj:
    """A StringMatch as used in one place.

    `empty_prefix`: a uri prefix may be "" (Envoy allows it for paths only); `presence_regex`:
    withoutHeaders treats regex "*" as "header present"; `required`: one match type must be set.
    """

    def rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
        if value.get("prefix") == "" and not empty_prefix:
            report((*path, "prefix"), "prefix must not be empty")
        regex = value.get("regex")
        if regex is None or (presence_regex and regex == "*"):
            return
        problem = _regex_text_problem(regex)
        if problem:
            report((*path, "regex"), problem)

    group = [("exact", "prefix", "regex")]
    return Obj(
        {"exact": Str(), "prefix": Str(), "regex": Str()},
        oneof=[] if required else group,
        exactly_one=group if required else [],
        rules=[rule],
    )


URI_MATCH = _string_match(empty_prefix=True)
STRING_MATCH = _string_match()
ABSENT_HEADER_MATCH = _string_match(presence_regex=True)
ORIGIN_MATCH = _string_match(required=True)

# --- headers ---------------------------------------------------------------------------------------

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _header_value_problem(value: str) -> str | None:
    """Envoy's header value syntax: no control characters, `%%` or a closed `%VARIABLE%`."""
    if _CONTROL_CHARACTERS.search(value):
        return f"header value {value!r} contains control characters"
    index = 0
    while index < len(value):
        if value[index] != "%":
            index += 1
            continue
        if value.startswith("%%", index):
            index += 2
            continue
        end = value.find("%", index + 1)
        if end == -1:
            return f"header value {value!r} has an unterminated %-variable; write %% for a literal %"
        index = end + 1
    return None


def _request_header_name_problem(name: str) -> str | None:
    """Names a request may set or add: anything but pseudo-headers, except the authority."""
    if not name:
        return "header name must not be empty"
    if name.startswith(":") and name.lower() != ":authority":
        return f"header {name!r} cannot be set: names starting with ':' are reserved"
    return None


def _fixed_header_name_problem(name: str) -> str | None:
    """Names that may be removed, or changed on responses: not Host, not pseudo-headers."""
    if not name:
        return "header name must not be empty"
    if name.lower() == "host" or name.startswith(":"):
        return f"header {name!r} cannot be changed here"
    return None


def _header_operations(set_name_problem: Callable[[str], str | None]) -> Obj:
    def rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
        for operation in ("set", "add"):
            for name, item in (value.get(operation) or {}).items():
                for problem in (set_name_problem(name), _header_value_problem(item)):
                    if problem:
                        report((*path, operation, name), problem)
        for index, name in enumerate(value.get("remove") or []):
            problem = _fixed_header_name_problem(name)
            if problem:
                report((*path, "remove", index), problem)

    return Obj({"set": Map(Str()), "add": Map(Str()), "remove": List(Str())}, rules=[rule])


HEADERS = Obj(
    {
        "request": _header_operations(_request_header_name_problem),
        "response": _header_operations(_fixed_header_name_problem),
    }
)

# --- destinations ----------------------------------------------------------------------------------


def _destination_host_rule(value: str, path: FieldPath, report: Report) -> None:
    if value == "*":
        report(path, "'*' is not a valid destination host")
        return
    _domain_rule(value, path, report)


def _subset_name_rule(value: str, path: FieldPath, report: Report) -> None:
    if value and not is_istio_label(value):
        report(path, f"invalid subset name {value!r}: must be a DNS label")


SUBSET_NAME = Str(rules=[_subset_name_rule])

DESTINATION = Obj(
    {"host": Str(min_len=1, rules=[_destination_host_rule]), "subset": SUBSET_NAME, "port": PORT_SELECTOR},
    required=["host"],
)


def _total_weight_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    if len(value) > 1 and sum(item.get("weight") or 0 for item in value) == 0:
        report(path, "the weights of the destinations add up to 0; give at least one a positive weight")


HTTP_ROUTE_DESTINATION = Obj(
    {"destination": DESTINATION, "weight": POSITIVE_INT32, "headers": HEADERS},
    required=["destination"],
)
ROUTE_DESTINATION = Obj({"destination": DESTINATION, "weight": POSITIVE_INT32}, required=["destination"])

# --- HTTP routes -----------------------------------------------------------------------------------


def _http_match_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    for field in ("headers", "withoutHeaders"):
        for name in value.get(field) or {}:
            if name.startswith(JWT_CLAIM_PREFIXES):
                continue
            problem = header_name_problem(name)
            if problem:
                report((*path, field, name), problem)


HTTP_MATCH_REQUEST = Obj(
    {
        "name": Str(),
        "uri": URI_MATCH,
        "scheme": STRING_MATCH,
        "method": STRING_MATCH,
        "authority": STRING_MATCH,
        "headers": Map(STRING_MATCH),
        "port": PORT_OR_ZERO,
        "sourceLabels": LABELS,
        "gateways": GATEWAY_NAMES,
        "queryParams": Map(STRING_MATCH),
        "ignoreUriCase": Bool(),
        "withoutHeaders": Map(ABSENT_HEADER_MATCH),
        "sourceNamespace": NAMESPACE,
        "statPrefix": Str(),
    },
    rules=[_http_match_rule],
)


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


HTTP_REDIRECT = Obj(
    {
        "uri": Str(),
        "prefixRewrite": Str(),
        "authority": Str(),
        "port": PORT_OR_ZERO,
        "derivePort": Enum("FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"),
        "scheme": Str(),
        "redirectCode": UINT32,
    },
    oneof=[("port", "derivePort"), ("uri", "prefixRewrite")],
    rules=[_redirect_rule],
)


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


HTTP_DIRECT_RESPONSE = Obj(
    {
        "status": UINT32,
        "body": Obj({"string": Str(), "bytes": Str()}, oneof=[("string", "bytes")], rules=[_body_rule]),
    },
    required=["status"],
    rules=[_direct_response_rule],
)

DELEGATE = Obj({"name": Str(min_len=1), "namespace": NAMESPACE}, required=["name"])


def _regex_rewrite_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if not value.get("match") or not value.get("rewrite"):
        report(path, "uriRegexRewrite needs both match and rewrite")
        return
    problem = _regex_text_problem(value["match"])
    if problem:
        report((*path, "match"), problem)


def _rewrite_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if not value.get("uri") and value.get("uriRegexRewrite") is None and not value.get("authority"):
        report(path, "rewrite must set uri, uriRegexRewrite or authority")


HTTP_REWRITE = Obj(
    {
        "uri": Str(),
        "authority": Str(),
        "uriRegexRewrite": Obj({"match": Str(), "rewrite": Str()}, rules=[_regex_rewrite_rule]),
    },
    oneof=[("uri", "uriRegexRewrite")],
    rules=[_rewrite_rule],
)

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


HTTP_RETRY = Obj(
    {
        "attempts": POSITIVE_INT32,
        "perTryTimeout": STRICT_DURATION,
        "retryOn": Str(),
        "retryRemoteLocalities": Bool(),
        "retryIgnorePreviousHosts": Bool(),
        "backoff": STRICT_DURATION,
    },
    rules=[_retry_rule],
)


def _fault_percentage_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    share = value.get("value") or 0
    if share < 0 or share > 100 or 0 < share < 0.0001:
        report((*path, "value"), f"percentage {share:g} must be 0 or between 0.0001 and 100")


def _mirror_percentage_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    share = value.get("value") or 0
    if not 0 <= share <= 100:
        report((*path, "value"), f"mirror percentage {share:g} must be between 0 and 100")


FAULT_PERCENT = PERCENT.extend(rules=[_fault_percentage_rule])
MIRROR_PERCENT = PERCENT.extend(rules=[_mirror_percentage_rule])

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


HTTP_FAULT_INJECTION = Obj(
    {
        "delay": Obj(
            {
                "fixedDelay": STRICT_DURATION,
                "exponentialDelay": STRICT_DURATION,
                "percentage": FAULT_PERCENT,
                "percent": Int(0, 100),
            },
            oneof=[("fixedDelay", "exponentialDelay")],
            rules=[_delay_rule],
        ),
        "abort": Obj(
            {"httpStatus": INT32, "grpcStatus": Str(), "http2Error": Str(), "percentage": FAULT_PERCENT},
            oneof=[("httpStatus", "grpcStatus", "http2Error")],
            rules=[_abort_rule],
        ),
    },
    rules=[_fault_rule],
)

HTTP_MIRROR_POLICY = Obj({"destination": DESTINATION, "percentage": MIRROR_PERCENT}, required=["destination"])

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


CORS_POLICY = Obj(
    {
        "allowOrigin": List(Str()),
        "allowOrigins": List(ORIGIN_MATCH),
        "allowMethods": List(Str(rules=[_method_rule])),
        "allowHeaders": List(Str(rules=[_cors_header_rule])),
        "exposeHeaders": List(Str(rules=[_cors_header_rule])),
        "maxAge": STRICT_DURATION,
        "allowCredentials": Bool(),
        "unmatchedPreflights": Enum("UNSPECIFIED", "FORWARD", "IGNORE"),
    },
    rules=[_cors_rule],
)


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


HTTP_ROUTE = Obj(
    {
        "name": Str(),
        "match": List(HTTP_MATCH_REQUEST),
        "route": List(HTTP_ROUTE_DESTINATION, rules=[_total_weight_rule]),
        "redirect": HTTP_REDIRECT,
        "directResponse": HTTP_DIRECT_RESPONSE,
        "delegate": DELEGATE,
        "rewrite": HTTP_REWRITE,
        "timeout": STRICT_DURATION,
        "retries": HTTP_RETRY,
        "fault": HTTP_FAULT_INJECTION,
        "mirror": DESTINATION,
        "mirrors": List(HTTP_MIRROR_POLICY),
        "mirrorPercent": Int(0, 100),
        "mirror_percent": Int(0, 100),
        "mirrorPercentage": MIRROR_PERCENT,
        "corsPolicy": CORS_POLICY,
        "headers": HEADERS,
    },
    oneof=[("mirror", "mirrors")],
    rules=[_http_route_rule],
)

# --- TLS and TCP routes ----------------------------------------------------------------------------

TLS_MATCH_ATTRIBUTES = Obj(
    {
        "sniHosts": List(Str(min_len=1)),
        "destinationSubnets": List(IP_OR_CIDR),
        "port": PORT_OR_ZERO,
        "sourceLabels": LABELS,
        "gateways": GATEWAY_NAMES,
        "sourceNamespace": NAMESPACE,
    },
    required=["sniHosts"],
)

L4_MATCH_ATTRIBUTES = Obj(
    {
        "destinationSubnets": List(IP_OR_CIDR),
        "port": PORT_OR_ZERO,
        "sourceSubnet": Str(),
        "sourceLabels": LABELS,
        "gateways": GATEWAY_NAMES,
        "sourceNamespace": NAMESPACE,
    }
)

TLS_ROUTE = Obj(
    {"match": List(TLS_MATCH_ATTRIBUTES), "route": List(ROUTE_DESTINATION, rules=[_total_weight_rule])},
    required=["match", "route"],
)
TCP_ROUTE = Obj(
    {"match": List(L4_MATCH_ATTRIBUTES), "route": List(ROUTE_DESTINATION, rules=[_total_weight_rule])},
    required=["route"],
)

# --- VirtualService --------------------------------------------------------------------------------


def binds_to_mesh(gateways: list[str]) -> bool:
    """A VirtualService without gateways, or one listing `mesh`, applies to sidecars."""
    return not gateways or "mesh" in gateways


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
            for field in ("headers", "withoutHeaders"):
                for name in match.get(field) or {}:
                    if name.startswith(JWT_CLAIM_PREFIXES):
                        report((*path, "http", route_index, "match", match_index, field, name),
                               "JWT claim routing only works on gateways; bind the VirtualService to one")


VIRTUAL_SERVICE = Obj(
    {
        "hosts": List(Str(min_len=1)),
        "gateways": GATEWAY_NAMES,
        "http": List(HTTP_ROUTE),
        "tls": List(TLS_ROUTE),
        "tcp": List(TCP_ROUTE),
        "exportTo": EXPORT_TO,
    },
    rules=[_virtual_service_rule],
)

# --- DestinationRule -------------------------------------------------------------------------------


def _http_pool_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("h2UpgradePolicy") == "UPGRADE" and value.get("useClientProtocol"):
        report((*path, "useClientProtocol"), "useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE")


def _connection_pool_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("http") is None and value.get("tcp") is None:
        report(path, "connectionPool must set tcp, http or both")


@message
class TcpKeepalive(Message):
    probes: int | None = field(UINT32)
    time: Nanos | None = field(STRICT_DURATION)
    interval: Nanos | None = field(STRICT_DURATION)


@message
class TCPSettings(Message):
    max_connections: int | None = field(POSITIVE_INT32)
    connect_timeout: Nanos | None = field(STRICT_DURATION)
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Nanos | None = field(STRICT_DURATION)
    idle_timeout: Nanos | None = field(STRICT_DURATION)


@message
class HTTP2KeepAlive(Message):
    interval: Nanos | None = field(STRICT_DURATION)
    timeout: Nanos | None = field(STRICT_DURATION)


@message(rules=[_http_pool_rule])
class HTTPSettings(Message):
    http1_max_pending_requests: int | None = field(POSITIVE_INT32)
    http2_max_requests: int | None = field(POSITIVE_INT32)
    max_requests_per_connection: int | None = field(POSITIVE_INT32)
    max_retries: int | None = field(POSITIVE_INT32)
    idle_timeout: Nanos | None = field(STRICT_DURATION)
    h2_upgrade_policy: str = field(Enum("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"))
    use_client_protocol: bool = False
    max_concurrent_streams: int | None = field(POSITIVE_INT32)
    http2_keep_alive: HTTP2KeepAlive | None = None


@message(rules=[_connection_pool_rule])
class ConnectionPoolSettings(Message):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


def _is_prime(number: int) -> bool:
    if number < 2:
        return False
    if number < 4:
        return True
    if number % 2 == 0:
        return False
    factor = 3
    while factor * factor <= number:
        if number % factor == 0:
            return False
        factor += 2
    return True


def _maglev_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    size = value.get("tableSize") or 0
    if size == 0:
        report((*path, "tableSize"), "maglev needs tableSize")
    elif size >= 5000011:
        report((*path, "tableSize"), "maglev tableSize must be less than 5000011")
    elif not _is_prime(size):
        report((*path, "tableSize"), f"maglev tableSize {size} must be a prime number")


def _consistent_hash_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("minimumRingSize") and (value.get("ringHash") is not None or value.get("maglev") is not None):
        report((*path, "minimumRingSize"), "minimumRingSize cannot be combined with ringHash or maglev")


@message(required=["name"])
class CookieAttribute(Message):
    name: str = field(Str(min_len=1))
    value: str = ""


@message(required=["name"])
class HTTPCookie(Message):
    name: str = field(Str(min_len=1))
    path: str = ""
    ttl: Nanos | None = field(ANY_DURATION)
    attributes: tuple[CookieAttribute, ...]


@message
class RingHash(Message):
    minimum_ring_size: int | None = field(Int(0))


@message(rules=[_maglev_rule])
class MagLev(Message):
    table_size: int | None = field(Int(0))


@message(
    oneof=[("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"), ("ringHash", "maglev")],
    rules=[_consistent_hash_rule],
)
class ConsistentHashLB(Message):
    http_header_name: str = ""
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool = False
    http_query_parameter_name: str = ""
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: int | None = field(Int(0))

_TOPOLOGY_LABELS = frozenset(
    {"topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"}
)


def _localities_problem(localities: list[str]) -> str | None:
    """Istio's validateLocalities: `region[/zone[/subzone]]`, one trailing `*`, no overlaps."""
    tree: dict[str, dict[str, set[str]]] = {}
    for locality in localities:
        stars = locality.count("*")
        if stars and (stars > 1 or not locality.endswith("*")):
            return f"locality {locality!r} may only end with a single '*'"
        if "*" in tree:
            return f"locality {locality!r} overlaps an earlier one"
        parts = locality.split("/", 2)
        if any(not part for part in parts):
            return f"locality {locality!r} has an empty region, zone or subzone"
        region = parts[0]
        zones = tree.get(region)
        if len(parts) == 1:
            if zones is not None:
                return f"locality {locality!r} overlaps an earlier one"
            tree[region] = {"*": {"*"}}
            continue
        zone = parts[1]
        if zones is not None and "*" in zones:
            return f"locality {locality!r} overlaps an earlier one"
        zones = tree.setdefault(region, {})
        subzones = zones.get(zone)
        if len(parts) == 2:
            if subzones is not None:
                return f"locality {locality!r} overlaps an earlier one"
            zones[zone] = {"*"}
            continue
        if subzones is not None and ("*" in subzones or parts[2] in subzones):
            return f"locality {locality!r} overlaps an earlier one"
        zones.setdefault(zone, set()).add(parts[2])
    return None


def _locality_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    distribute = value.get("distribute") or []
    failover = value.get("failover") or []
    if distribute and failover:
        report(path, "distribute and failover cannot both be set")
        return
    if failover:
        for index, label in enumerate(value.get("failoverPriority") or []):
            if label in _TOPOLOGY_LABELS:
                report((*path, "failoverPriority", index),
                       f"failoverPriority cannot use the topology label {label!r} together with failover")
                return
    for index, entry in enumerate(distribute):
        weights = entry.get("to") or {}
        where = (*path, "distribute", index, "to")
        if any(not 1 <= weight <= 100 for weight in weights.values()):
            report(where, "locality weights must be between 1 and 100")
            return
        if sum(weights.values()) != 100:
            report(where, f"locality weights add up to {sum(weights.values())}, not 100")
            return
        problem = _localities_problem(list(weights))
        if problem:
            report(where, problem)
    problem = _localities_problem([entry.get("from") or "" for entry in distribute])
    if problem:
        report((*path, "distribute"), problem)
    for index, entry in enumerate(failover):
        source, target = entry.get("from") or "", entry.get("to") or ""
        where = (*path, "failover", index)
        if source == target:
            report(where, "failover from and to must be different regions")
        if "/" in source or "/" in target:
            report(where, "failover takes regions, not zones")
        if "*" in source or "*" in target:
            report(where, "failover regions must not contain '*'")


@message
class Distribute(Message):
    from_: str = ""
    to: Mapping[str, int] = field(Map(UINT32))


@message
class Failover(Message):
    from_: str = ""
    to: str = ""


@message(rules=[_locality_rule])
class LocalityLoadBalancerSetting(Message):
    distribute: tuple[Distribute, ...]
    failover: tuple[Failover, ...]
    failover_priority: tuple[str, ...] = field(List(Str(min_len=1)))
    enabled: bool | None = None


@message(required=["duration"])
class WarmupConfiguration(Message):
    duration: Nanos | None = field(STRICT_DURATION)
    minimum_percent: float | None = field(Float(0, 100))
    aggression: float | None = field(Float(0))


@message(oneof=[("simple", "consistentHash")])
class LoadBalancerSettings(Message):
    simple: str = field(Enum("UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"))
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    warmup_duration_secs: Nanos | None = field(STRICT_DURATION)
    warmup: WarmupConfiguration | None = None


def _outlier_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if (value.get("consecutiveLocalOriginFailures") or 0) > 0 and not value.get("splitExternalLocalOriginErrors"):
        report((*path, "consecutiveLocalOriginFailures"),
               "consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true")


@message(rules=[_outlier_rule])
class OutlierDetection(Message):
    split_external_local_origin_errors: bool = False
    consecutive_local_origin_failures: int | None = field(UINT32)
    consecutive_gateway_errors: int | None = field(UINT32)
    consecutive_5xx_errors: int | None = field(UINT32)
    interval: Nanos | None = field(STRICT_DURATION)
    base_ejection_time: Nanos | None = field(STRICT_DURATION)
    max_ejection_percent: int | None = field(Int(0, 100))
    min_health_percent: int | None = field(Int(0, 100))
    consecutive_errors: int | None = field(INT32)


def _client_tls_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    mode = value.get("mode") or "DISABLE"
    credential = value.get("credentialName")
    if value.get("insecureSkipVerify"):
        if mode == "SIMPLE" and (value.get("caCertificates") or credential or value.get("subjectAltNames")):
            report((*path, "insecureSkipVerify"),
                   "insecureSkipVerify cannot be combined with caCertificates, credentialName or subjectAltNames")
        if mode == "MUTUAL" and (value.get("caCertificates") or value.get("subjectAltNames")):
            report((*path, "insecureSkipVerify"),
                   "insecureSkipVerify cannot be combined with caCertificates or subjectAltNames")
    if mode in ("SIMPLE", "MUTUAL") and credential:
        if any(value.get(key) for key in ("clientCertificate", "privateKey", "caCertificates", "caCrl")):
            report((*path, "credentialName"),
                   "credentialName cannot be combined with clientCertificate, privateKey, caCertificates or caCrl")
        return
    if mode == "MUTUAL":
        for key in ("clientCertificate", "privateKey"):
            if not value.get(key):
                report((*path, key), f"mode MUTUAL needs {key} (or credentialName)")


@message(rules=[_client_tls_rule])
class ClientTLSSettings(Message):
    mode: str = field(Enum("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"))
    client_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""
    credential_name: str = ""
    subject_alt_names: tuple[str, ...]
    sni: str = ""
    insecure_skip_verify: bool | None = None
    ca_crl: str = ""

_POLICY_PARTS = ("loadBalancer", "connectionPool", "outlierDetection", "tls")


def _port_policy_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if all(value.get(key) is None for key in _POLICY_PARTS):
        report(path, "port-level settings must set at least one of " + ", ".join(_POLICY_PARTS))


@message
class PolicyPort(Message):
    """A port-level policy's port: `number` 0 is Istio's way to say "unset"."""

    number: int = field(PORT_OR_ZERO)


@message(required=["port"], rules=[_port_policy_rule])
class PortTrafficPolicy(Message):
    port: PolicyPort | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


def _tunnel_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("protocol") not in (None, "", "CONNECT", "POST"):
        report((*path, "protocol"), "tunnel protocol must be 'CONNECT' or 'POST'")
    host = value["targetHost"]
    if not is_ip(host) and _fqdn_only_problem(host):
        report((*path, "targetHost"), f"tunnel targetHost {host!r} is neither a host name nor an IP address")
    if not 1 <= value["targetPort"] <= 65535:
        report((*path, "targetPort"), "tunnel targetPort must be between 1 and 65535")


@message(required=["targetHost", "targetPort"], rules=[_tunnel_rule])
class TunnelSettings(Message):
    protocol: str = ""
    target_host: str = ""
    target_port: int = field(UINT32)


def _traffic_policy_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if all(item is None or item == [] for item in value.values()):
        report(path, "trafficPolicy must set at least one field")
    if value.get("tunnel") is not None and value.get("proxyProtocol") is not None:
        report((*path, "proxyProtocol"), "tunnel and proxyProtocol cannot both be set")


@message
class ProxyProtocol(Message):
    version: str = field(Enum("V1", "V2"))


@message
class RetryBudget(Message):
    percent: float | None = field(Float(0, 100))
    min_retry_concurrency: int | None = field(UINT32)
    budget_interval: Nanos | None = field(STRICT_DURATION)


@message(rules=[_traffic_policy_rule])
class TrafficPolicy(Message):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...]
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None


@message(required=["name"])
class Subset(Message):
    name: str = field(SUBSET_NAME)
    labels: Mapping[str, str] = field(LABELS)
    traffic_policy: TrafficPolicy | None = None


def _subsets_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    seen: set[str] = set()
    for index, subset in enumerate(value):
        name = subset["name"]
        if name in seen:
            report((*path, index, "name"), f"duplicate subset name {name!r}")
        seen.add(name)


def _exported_selector_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    """A rule for selected workloads is private to its namespace: they all live there."""
    export_to = spec.get("exportTo") or []
    if spec.get("workloadSelector") is not None and export_to:
        if len(set(export_to)) > 1 or export_to[0] in ("*", "~"):
            report((*path, "exportTo"),
                   "a DestinationRule with workloadSelector can only be exported to its own namespace")


@message(required=["host"], rules=[_exported_selector_rule])
class DestinationRule(Message):
    host: str = field(Str(min_len=1, rules=[_domain_rule]))
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = field(List(Subset.SCHEMA, rules=[_subsets_rule]))
    export_to: tuple[str, ...] = field(EXPORT_TO)
    workload_selector: WorkloadSelector | None = None

# --- Gateway ---------------------------------------------------------------------------------------


def _host_part_problem(name: str, *, gateway: bool) -> str | None:
    """The dnsName part of a Gateway or Sidecar host: fully qualified, wildcard only in front."""
    if name != "*" and "." not in name:
        return f"short name {name!r} is not allowed; use a fully qualified name"
    problem = domain_problem(name)
    if problem and not (gateway and is_ip(name)):
        return problem
    if "*" in name and name != "*" and not name.startswith("*."):
        return f"partial wildcard {name!r} is not allowed"
    return None


def namespaced_host_problem(host: str, *, gateway: bool) -> str | None:
    """Istio's ValidateNamespaceSlashWildcardHostname for Gateway servers and Sidecar egress.

    Sidecars need `namespace/dnsName`; gateways also take a bare dnsName (or an IP).
    """
    namespace, slash, name = host.partition("/")
    if not slash:
        if gateway:
            return _host_part_problem(host, gateway=True)
        return f"invalid host {host!r}: use namespace/dnsName, for example './*' or 'istio-system/*'"
    if not namespace or not name:
        return f"invalid host {host!r}: namespace and dnsName must not be empty"
    special = ("*", ".") if gateway else ("*", ".", "~")
    if namespace not in special and not is_istio_label(namespace):
        return f"invalid namespace {namespace!r} in host {host!r}"
    return _host_part_problem(name, gateway=gateway)


def _certificate_count_rule(value: list[Any], path: FieldPath, report: Report) -> None:
    if len(value) > 2:
        report(path, "at most 2 certificates may be set")


def _has_server_certificate(tls: dict[str, Any]) -> bool:
    return bool(tls.get("tlsCertificates")) or bool(tls.get("serverCertificate") and tls.get("privateKey"))


def _has_client_ca(tls: dict[str, Any]) -> bool:
    return bool(
        tls.get("caCertificates")
        or tls.get("caCertCredentialName")
        or any(item.get("caCertificates") for item in tls.get("tlsCertificates") or [])
    )


def _server_tls_rule(tls: dict[str, Any], path: FieldPath, report: Report) -> None:
    """Istio's validateTLSOptions: what each server TLS mode needs and forbids."""
    mode = tls.get("mode") or "PASSTHROUGH"
    credential = tls.get("credentialName") or tls.get("credentialNames")
    if mode == "ISTIO_MUTUAL":
        for key in ("serverCertificate", "privateKey", "caCertificates", "credentialName", "credentialNames",
                    "tlsCertificates"):
            if tls.get(key):
                report((*path, key), f"{key} cannot be set with mode ISTIO_MUTUAL")
        return
    if mode not in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        return
    if tls.get("caCrl"):
        if credential:
            report((*path, "caCrl"), "caCrl cannot be combined with credentialName; put the CRL in the credential")
        elif mode == "SIMPLE":
            report((*path, "caCrl"), "caCrl is not supported with mode SIMPLE")
    if credential:
        return
    if not tls.get("tlsCertificates"):
        for key in ("serverCertificate", "privateKey"):
            if not tls.get(key):
                report((*path, key), f"mode {mode} needs {key} (or credentialName)")
    if mode != "SIMPLE" and not _has_client_ca(tls):
        report((*path, "caCertificates"), f"mode {mode} needs caCertificates (or credentialName)")


SERVER_TLS_SETTINGS = Obj(
    {
        "httpsRedirect": Bool(),
        "mode": Enum("PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"),
        "serverCertificate": Str(),
        "privateKey": Str(),
        "caCertificates": Str(),
        "caCrl": Str(),
        "credentialName": Str(),
        "credentialNames": List(Str(min_len=1), min_items=1, rules=[_certificate_count_rule]),
        "caCertCredentialName": Str(),
        "tlsCertificates": List(
            Obj({"serverCertificate": Str(), "privateKey": Str(), "caCertificates": Str()}),
            min_items=1,
            rules=[_certificate_count_rule],
        ),
        "subjectAltNames": List(Str()),
        "verifyCertificateSpki": List(Str()),
        "verifyCertificateHash": List(Str()),
        "minProtocolVersion": TLS_VERSION,
        "maxProtocolVersion": TLS_VERSION,
        "cipherSuites": List(Str()),
    },
    oneof=[("credentialName", "credentialNames", "tlsCertificates")],
    rules=[_server_tls_rule],
)


def _bind_problem(bind: str) -> str | None:
    if bind.startswith(UNIX_PREFIX):
        return unix_address_problem(bind[len(UNIX_PREFIX):])
    if bind and not is_ip(bind):
        return f"invalid bind address {bind!r}: must be an IP address or unix://path"
    return None


def _server_rule(server: dict[str, Any], path: FieldPath, report: Report) -> None:
    for index, host in enumerate(server.get("hosts") or []):
        problem = namespaced_host_problem(host, gateway=True)
        if problem:
            report((*path, "hosts", index), problem)
    port = server["port"]
    bind = server.get("bind") or ""
    unix = bind.startswith(UNIX_PREFIX)
    number = port.get("number") or 0
    if number == 0 and not unix:
        report((*path, "port", "number"), "port number must be between 1 and 65535")
    if unix and number:
        report((*path, "port", "number"), "port number must be 0 with a unix socket bind address")
    if port.get("targetPort"):
        report((*path, "port", "targetPort"), "targetPort has no effect on gateways")
    problem = _bind_problem(bind)
    if problem:
        report((*path, "bind"), problem)
    protocol = protocols.parse(port.get("protocol") or "")
    if protocol == protocols.UNSUPPORTED:
        report((*path, "port", "protocol"),
               f"invalid protocol {port.get('protocol')!r}; use one of HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, "
               "TLS, TCP, MONGO, REDIS, MYSQL")
        return
    tls = server.get("tls")
    if protocol in protocols.TLS_FAMILY and tls is None:
        report((*path, "tls"), f"{protocol} servers need tls settings")
    elif protocol not in protocols.TLS_FAMILY and tls is not None:
        if protocol not in protocols.HTTP_FAMILY:
            report((*path, "tls"), "tls settings need an HTTPS or TLS port")
        elif (tls.get("mode") or "PASSTHROUGH") not in ("PASSTHROUGH", "AUTO_PASSTHROUGH") or any(
                tls.get(key) for key in ("caCertificates", "privateKey", "serverCertificate")):
            report((*path, "tls"), "plain-text HTTP servers only take tls.httpsRedirect")


SERVER = Obj(
    {
        "port": Obj({"number": PORT_OR_ZERO, "protocol": Str(), "name": Str(), "targetPort": UINT32},
                    required=["protocol", "name"]),
        "bind": Str(),
        "hosts": List(Str(min_len=1)),
        "tls": SERVER_TLS_SETTINGS,
        "defaultEndpoint": Str(),
        "name": Str(),
    },
    required=["port", "hosts"],
    rules=[_server_rule],
)


def _gateway_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    seen: set[str] = set()
    for index, server in enumerate(spec.get("servers") or []):
        name = server["port"]["name"]
        if name in seen:
            report((*path, "servers", index, "port", "name"),
                   f"duplicate port name {name!r}: port names must be unique across servers")
        seen.add(name)


GATEWAY = Obj(
    {"servers": List(SERVER), "selector": LABELS},
    required=["servers"],
    rules=[_gateway_rule],
)

# --- WorkloadEntry and ServiceEntry ----------------------------------------------------------------


def _workload_entry_rule(entry: dict[str, Any], path: FieldPath, report: Report) -> None:
    address = entry.get("address") or ""
    if not address:
        if not entry.get("network"):
            report((*path, "address"), "address is required unless network is set")
    elif address.startswith(UNIX_PREFIX):
        problem = unix_address_problem(address[len(UNIX_PREFIX):])
        if problem:
            report((*path, "address"), problem)
        if entry.get("ports"):
            report((*path, "ports"), "a unix socket endpoint cannot have ports")
    elif not is_ip(address) and _fqdn_only_problem(address):
        report((*path, "address"), f"address {address!r} is neither an IP address nor a host name")


WORKLOAD_ENTRY = Obj(
    {
        "address": Str(),
        "ports": Map(PORT, key=PORT_NAME),
        "labels": LABELS,
        "network": Str(),
        "locality": Str(),
        "weight": UINT32,
        "serviceAccount": Str(),
    },
    rules=[_workload_entry_rule],
)


def _service_port_rule(port: dict[str, Any], path: FieldPath, report: Report) -> None:
    problem = _protocol_problem(port.get("protocol"))
    if problem:
        report((*path, "protocol"), problem)


SERVICE_PORT = Obj(
    {"number": PORT, "protocol": Str(), "name": PORT_NAME, "targetPort": PORT_OR_ZERO},
    required=["number", "name"],
    rules=[_service_port_rule],
)


def _unique_service_ports_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    names: set[str] = set()
    numbers: set[int] = set()
    for index, port in enumerate(value):
        if port["name"] in names:
            report((*path, index, "name"), f"port name {port['name']!r} is already defined")
        if port["number"] in numbers:
            report((*path, index, "number"), f"port {port['number']} is already defined")
        names.add(port["name"])
        numbers.add(port["number"])


def _service_entry_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    hosts = spec["hosts"]
    for index, host in enumerate(hosts):
        problem = "'*' is not a valid ServiceEntry host" if host == "*" else domain_problem(host)
        if problem:
            report((*path, "hosts", index), problem)
    resolution = spec.get("resolution") or "NONE"
    if any("/" in address for address in spec.get("addresses") or []) and resolution not in ("NONE", "STATIC"):
        report((*path, "addresses"), "CIDR addresses need resolution NONE or STATIC")
    ports = spec.get("ports") or []
    endpoints = spec.get("endpoints") or []
    if resolution in ("NONE", "DYNAMIC_DNS") and endpoints:
        report((*path, "endpoints"), f"endpoints cannot be set with resolution {resolution}")
    if resolution in ("STATIC", "DNS", "DNS_ROUND_ROBIN"):
        _service_entry_endpoints_rule(spec, resolution, path, report)
    if resolution in ("DNS", "DNS_ROUND_ROBIN") and not endpoints:
        for index, host in enumerate(hosts):
            if _fqdn_only_problem(host):
                report((*path, "hosts", index),
                       f"host {host!r} must be a fully qualified name without wildcards: resolution is "
                       f"{resolution} and there are no endpoints")
    if resolution == "DNS_ROUND_ROBIN" and len(endpoints) > 1:
        report((*path, "endpoints"), "resolution DNS_ROUND_ROBIN allows at most one endpoint")
    if resolution != "NONE" and len(hosts) > 1:
        for index, port in enumerate(ports):
            protocol = protocols.parse(port.get("protocol") or "")
            if protocol not in protocols.HTTP_FAMILY and protocol not in protocols.TLS_FAMILY:
                report((*path, "ports", index, "protocol"),
                       "several hosts need HTTP or TLS ports unless resolution is NONE")
                break


def _service_entry_endpoints_rule(spec: dict[str, Any], resolution: str, path: FieldPath,
                                  report: Report) -> None:
    port_names = {port["name"] for port in spec.get("ports") or []}
    for index, endpoint in enumerate(spec.get("endpoints") or []):
        where = (*path, "endpoints", index)
        address = endpoint.get("address") or ""
        if resolution == "STATIC" and address and not address.startswith(UNIX_PREFIX) and not is_ip(address):
            report((*where, "address"), f"endpoint address {address!r} must be an IP address with resolution STATIC")
        if address.startswith(UNIX_PREFIX) and len(port_names) != 1:
            report((*where, "address"), "a unix socket endpoint needs exactly one ServiceEntry port")
        for name in endpoint.get("ports") or {}:
            if name not in port_names:
                report((*where, "ports", name), f"endpoint port {name!r} is not a port of the ServiceEntry")


SERVICE_ENTRY = Obj(
    {
        "hosts": List(Str(min_len=1)),
        "addresses": List(IP_OR_CIDR),
        "ports": List(SERVICE_PORT, rules=[_unique_service_ports_rule]),
        "location": Enum("MESH_EXTERNAL", "MESH_INTERNAL"),
        "resolution": Enum("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"),
        "endpoints": List(WORKLOAD_ENTRY),
        "workloadSelector": NETWORK_WORKLOAD_SELECTOR,
        "exportTo": EXPORT_TO,
        "subjectAltNames": List(Str()),
    },
    required=["hosts"],
    oneof=[("workloadSelector", "endpoints")],
    rules=[_service_entry_rule],
)

# --- Sidecar ---------------------------------------------------------------------------------------

CAPTURE_MODE = Enum("DEFAULT", "IPTABLES", "NONE")

SIDECAR_PORT = Obj({"number": PORT_OR_ZERO, "protocol": Str(), "name": Str(), "targetPort": UINT32})


def _sidecar_port_rule(listener: dict[str, Any], path: FieldPath, report: Report) -> None:
    """What ingress and egress listeners share: port name, protocol, targetPort."""
    port = listener["port"]
    if port.get("name") and not is_istio_label(port["name"]):
        report((*path, "port", "name"), f"invalid port name {port['name']!r}: must be a DNS label")
    problem = _protocol_problem(port.get("protocol"))
    if problem:
        report((*path, "port", "protocol"), problem)
    if port.get("targetPort"):
        report((*path, "port", "targetPort"), "targetPort has no effect on Sidecars")


def _default_endpoint_problem(endpoint: str) -> str | None:
    if endpoint.startswith(UNIX_PREFIX):
        return unix_address_problem(endpoint[len(UNIX_PREFIX):])
    parts = _split_host_port(endpoint)
    if parts is None or parts[0] not in ("", "127.0.0.1", "0.0.0.0", "::1", "::"):
        return "defaultEndpoint must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix://path"
    if not parts[1].isdigit() or not 1 <= int(parts[1]) <= 65535:
        return f"defaultEndpoint port {parts[1]!r} must be a number between 1 and 65535"
    return None


def _sidecar_ingress_tls_rule(tls: dict[str, Any], path: FieldPath, report: Report) -> None:
    for key in ("subjectAltNames", "httpsRedirect", "credentialName"):
        if tls.get(key):
            report((*path, key), f"{key} is not supported on Sidecar ingress")
    mode = tls.get("mode")
    if mode in ("ISTIO_MUTUAL", "AUTO_PASSTHROUGH"):
        report((*path, "mode"), f"mode {mode} is not allowed on Sidecar ingress")


SIDECAR_INGRESS_TLS = SERVER_TLS_SETTINGS.extend(rules=[_sidecar_ingress_tls_rule, _server_tls_rule])


def _ingress_rule(listener: dict[str, Any], path: FieldPath, report: Report) -> None:
    _sidecar_port_rule(listener, path, report)
    if not listener["port"].get("number"):
        report((*path, "port", "number"), "port number must be between 1 and 65535")
    bind = listener.get("bind") or ""
    if bind and not is_ip(bind):
        report((*path, "bind"), f"invalid bind address {bind!r}: must be an IP address")
    endpoint = listener.get("defaultEndpoint")
    problem = _default_endpoint_problem(endpoint) if endpoint else None
    if problem:
        report((*path, "defaultEndpoint"), problem)


def _egress_rule(listener: dict[str, Any], path: FieldPath, report: Report) -> None:
    for index, host in enumerate(listener.get("hosts") or []):
        problem = namespaced_host_problem(host, gateway=False)
        if problem:
            report((*path, "hosts", index), problem)
    if listener.get("port") is None:
        return
    _sidecar_port_rule(listener, path, report)
    bind = listener.get("bind") or ""
    if listener["port"].get("number"):
        if bind and not is_ip(bind):
            report((*path, "bind"), f"invalid bind address {bind!r}: must be an IP address")
        return
    if not bind.startswith(UNIX_PREFIX):
        report((*path, "bind"), "a listener with port number 0 needs a unix://path bind address")
    else:
        problem = unix_address_problem(bind[len(UNIX_PREFIX):])
        if problem:
            report((*path, "bind"), problem)
    if listener.get("captureMode") not in (None, "DEFAULT", "NONE"):
        report((*path, "captureMode"), "captureMode must be DEFAULT or NONE for a unix socket listener")


def _ingress_list_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    seen: set[int] = set()
    for index, listener in enumerate(value):
        number = listener["port"].get("number") or 0
        if number in seen:
            report((*path, index, "port", "number"), f"port {number} is used by another ingress listener")
        seen.add(number)


def _egress_list_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    catch_all = False
    numbers: set[int] = set()
    sockets: set[str] = set()
    for index, listener in enumerate(value):
        port = listener.get("port")
        if port is None:
            if catch_all:
                report((*path, index), "only one egress listener may omit port")
            elif index != len(value) - 1:
                report((*path, index), "the egress listener without port must be the last one")
            catch_all = True
            continue
        number = port.get("number") or 0
        if number:
            if number in numbers:
                report((*path, index, "port", "number"), f"port {number} is used by another egress listener")
            numbers.add(number)
        else:
            bind = listener.get("bind") or ""
            if bind in sockets:
                report((*path, index, "bind"), f"unix socket {bind!r} is used by another egress listener")
            sockets.add(bind)


def _outbound_policy_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    proxy = value.get("egressProxy")
    if proxy is None:
        return
    if value.get("mode") != "ALLOW_ANY":
        report((*path, "egressProxy"), "egressProxy needs mode ALLOW_ANY")
        return
    problem = _fqdn_only_problem(proxy["host"])
    if problem:
        report((*path, "egressProxy", "host"), problem)
    if proxy.get("port") is None:
        report((*path, "egressProxy", "port"), "egressProxy needs a port")


def _sidecar_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    parts = ("egress", "ingress", "outboundTrafficPolicy", "inboundConnectionPool")
    if not any(spec.get(key) for key in parts):
        report(path, "a Sidecar must set at least one of " + ", ".join(parts))


SIDECAR = Obj(
    {
        "workloadSelector": NETWORK_WORKLOAD_SELECTOR,
        "ingress": List(
            Obj(
                {
                    "port": SIDECAR_PORT,
                    "bind": Str(),
                    "captureMode": CAPTURE_MODE,
                    "defaultEndpoint": Str(),
                    "tls": SIDECAR_INGRESS_TLS,
                    "connectionPool": ConnectionPoolSettings.SCHEMA,
                },
                required=["port"],
                rules=[_ingress_rule],
            ),
            rules=[_ingress_list_rule],
        ),
        "egress": List(
            Obj(
                {"port": SIDECAR_PORT, "bind": Str(), "captureMode": CAPTURE_MODE, "hosts": List(Str(min_len=1))},
                required=["hosts"],
                rules=[_egress_rule],
            ),
            rules=[_egress_list_rule],
        ),
        "outboundTrafficPolicy": Obj(
            {"mode": Enum("REGISTRY_ONLY", "ALLOW_ANY"), "egressProxy": DESTINATION},
            rules=[_outbound_policy_rule],
        ),
        "inboundConnectionPool": ConnectionPoolSettings.SCHEMA,
    },
    rules=[_sidecar_rule],
)
