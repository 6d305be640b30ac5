"""One VirtualService HTTP rule and match → one Envoy Route (translation-spec §3.4–§3.5)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import previous_priorities_config_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2

from meshctl.config.values import parse_proto_bytes
from meshctl.generate import names
from meshctl.generate.protobuf import set_duration, typed

FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_REDIRECT_CODES = {
    0: rc.RedirectAction.MOVED_PERMANENTLY,
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}
# Status codes Go's net/http knows: Istio treats only these as codes in `retryOn`.
_HTTP_CODES = frozenset(
    [100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226]
    + list(range(300, 309))
    + list(range(400, 419)) + [421, 422, 423, 424, 425, 426, 428, 429, 431, 451]
    + list(range(500, 509)) + [510, 511]
)
_GRPC_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

# Resolves a VirtualService destination to (cluster name, concrete host).
ClusterOf = Callable[[Mapping[str, Any]], str]
HashOf = Callable[[Mapping[str, Any]], "rc.RouteAction.HashPolicy | None"]


def _previous_hosts() -> rc.RetryPolicy.RetryHostPredicate:
    return rc.RetryPolicy.RetryHostPredicate(
        name="envoy.retry_host_predicates.previous_hosts",
        typed_config=typed(previous_hosts_pb2.PreviousHostsPredicate()),
    )


def _default_retry_policy(consistent_hash: bool) -> rc.RetryPolicy:
    policy = rc.RetryPolicy(retry_on=DEFAULT_RETRY_ON, host_selection_retry_max_attempts=5)
    policy.num_retries.value = 2
    if not consistent_hash:
        policy.retry_host_predicate.append(_previous_hosts())
    return policy


_DEFAULT_RETRY = _default_retry_policy(False)
_DEFAULT_RETRY_HASHED = _default_retry_policy(True)


def default_retry_policy(consistent_hash: bool = False) -> rc.RetryPolicy:
    """Istio's default (≥1.24): 2 retries on connect/refused/unavailable/cancelled, no 503.
    (A shared instance: copy it into a route, never modify it.)"""
    return _DEFAULT_RETRY_HASHED if consistent_hash else _DEFAULT_RETRY


def retry_policy(retries: Mapping[str, Any] | None, consistent_hash: bool) -> rc.RetryPolicy | None:
    if retries is None:
        return default_retry_policy(consistent_hash)
    attempts = retries.get("attempts", 0)
    if attempts <= 0:
        return None
    policy = _default_retry_policy(consistent_hash)
    policy.num_retries.value = attempts
    if retries.get("retryOn"):
        parts = [p.strip() for p in retries["retryOn"].split(",") if p.strip()]
        codes = [int(p) for p in parts if p.isdigit() and int(p) in _HTTP_CODES]
        words = [p for p in parts if not (p.isdigit() and int(p) in _HTTP_CODES)]
        policy.retry_on = ",".join(words)
        policy.retriable_status_codes.extend(codes)
        if codes and "retriable-status-codes" not in policy.retry_on:
            policy.retry_on += ",retriable-status-codes"
    if retries.get("perTryTimeout"):
        set_duration(policy.per_try_timeout, retries["perTryTimeout"])
    if retries.get("retryIgnorePreviousHosts") is not None:
        del policy.retry_host_predicate[:]
        if retries["retryIgnorePreviousHosts"]:
            policy.retry_host_predicate.append(_previous_hosts())
    if retries.get("retryRemoteLocalities"):
        config = previous_priorities_config_pb2.PreviousPrioritiesConfig(update_frequency=2)
        policy.retry_priority.name = "envoy.retry_priorities.previous_priorities"
        policy.retry_priority.typed_config.CopyFrom(typed(config))
    if retries.get("backoff"):
        set_duration(policy.retry_back_off.base_interval, retries["backoff"])
    return policy


def _present(match: Mapping[str, Any] | None) -> bool:
    """Istio turns an empty StringMatch, or regex `*`, into a presence check."""
    return not match or match.get("regex") == "*"


def string_matcher(match: Mapping[str, Any], *, ignore_case: bool = False) -> string_pb2.StringMatcher:
    out = string_pb2.StringMatcher(ignore_case=ignore_case)
    if "exact" in match:
        out.exact = match["exact"]
    elif "prefix" in match:
        out.prefix = match["prefix"]
    elif "regex" in match:
        out.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=match["regex"]))
    return out


def _header(name: str, match: Mapping[str, Any] | None) -> rc.HeaderMatcher:
    header = rc.HeaderMatcher(name=name)
    if _present(match):
        header.present_match = True
    else:
        header.string_match.CopyFrom(string_matcher(match))
    return header


def route_match(match: Mapping[str, Any] | None) -> rc.RouteMatch:
    out = rc.RouteMatch(prefix="/")
    if match is None:
        return out
    headers = [_header(name, value) for name, value in (match.get("headers") or {}).items()]
    for name, value in (match.get("withoutHeaders") or {}).items():
        header = _header(name, value)
        header.invert_match = True
        if not _present(value):
            header.treat_missing_header_as_empty = True
        headers.append(header)
    headers.sort(key=lambda h: h.name)
    uri = match.get("uri")
    if uri:
        if "exact" in uri:
            out.path = uri["exact"]
        elif "prefix" in uri:
            out.prefix = uri["prefix"]
        elif "regex" in uri:
            out.safe_regex.regex = uri["regex"]
    out.case_sensitive.value = not match.get("ignoreUriCase", False)
    for pseudo, key in ((":method", "method"), (":authority", "authority"), (":scheme", "scheme")):
        if match.get(key) is not None:
            headers.append(_header(pseudo, match[key]))
    out.headers.extend(headers)
    for name in sorted(match.get("queryParams") or {}):
        value = match["queryParams"][name]
        query = out.query_parameters.add(name=name)
        if _present(value):
            query.present_match = True
        else:
            query.string_match.CopyFrom(string_matcher(value))
    return out


def is_catch_all(route: rc.Route) -> bool:
    match = route.match
    which = match.WhichOneof("path_specifier")
    catch_all = (
        (which == "prefix" and match.prefix == "/")
        or (which == "path_separated_prefix" and match.path_separated_prefix == "/")
        or (which == "safe_regex" and match.safe_regex.regex == ".*")
    )
    return catch_all and not match.headers and not match.query_parameters and not match.dynamic_metadata


def _header_options(values: Mapping[str, str] | None, append: bool) -> tuple[list[base_pb2.HeaderValueOption], str]:
    """Header additions sorted by name; `:authority`/`host` become a host rewrite instead."""
    options = []
    authority = ""
    action = (base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD if append
              else base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD)
    for key in sorted(values or {}):
        value = values[key]
        if key.lower() in (":authority", "host"):
            authority = value
        if key.startswith(":") or key.lower() == "host":
            continue
        option = base_pb2.HeaderValueOption(append_action=action)
        option.header.key = key
        option.header.value = value
        options.append(option)
    return options, authority


def _dropped_internal(keys: Sequence[str] | None) -> list[str]:
    return [k for k in keys or [] if not k.startswith(":") and k.lower() != "host"]


class HeaderOperations:
    """Istio's translation of a `headers` block (route or destination level)."""

    def __init__(self, headers: Mapping[str, Any]) -> None:
        request = headers.get("request") or {}
        response = headers.get("response") or {}
        set_options, set_authority = _header_options(request.get("set"), False)
        add_options, add_authority = _header_options(request.get("add"), True)
        self.request_add = set_options + add_options
        self.authority = set_authority or add_authority
        response_set, _ = _header_options(response.get("set"), False)
        response_add, _ = _header_options(response.get("add"), True)
        self.response_add = response_set + response_add
        self.request_remove = _dropped_internal(request.get("remove"))
        self.response_remove = _dropped_internal(response.get("remove"))

    def apply(self, target: Any) -> None:
        target.request_headers_to_add.extend(self.request_add)
        target.request_headers_to_remove.extend(self.request_remove)
        target.response_headers_to_add.extend(self.response_add)
        target.response_headers_to_remove.extend(self.response_remove)


def _fractional(value: float) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(numerator=int(value * 10000), denominator=percent_pb2.FractionalPercent.MILLION)


def _hundred(value: int) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(numerator=value, denominator=percent_pb2.FractionalPercent.HUNDRED)


def fault_config(fault: Mapping[str, Any]) -> fault_pb2.HTTPFault | None:
    out = fault_pb2.HTTPFault()
    delay = fault.get("delay")
    if delay and delay.get("fixedDelay"):
        target = out.delay
        if delay.get("percentage") is not None:
            target.percentage.CopyFrom(_fractional(delay["percentage"].get("value", 0)))
        else:
            target.percentage.CopyFrom(_hundred(delay.get("percent", 0)))
        set_duration(target.fixed_delay, delay["fixedDelay"])
    abort = fault.get("abort")
    if abort and (abort.get("httpStatus") is not None or abort.get("grpcStatus")):
        target = out.abort
        if abort.get("percentage") is not None:
            target.percentage.CopyFrom(_fractional(abort["percentage"].get("value", 0)))
        if abort.get("httpStatus") is not None:
            target.http_status = abort["httpStatus"]
        else:
            status = abort["grpcStatus"]
            target.grpc_status = _GRPC_CODES.get(status, int(status) if str(status).isdigit() else 2)
    if not out.HasField("delay") and not out.HasField("abort"):
        return None
    return out


def cors_config(policy: Mapping[str, Any]) -> cors_pb2.CorsPolicy:
    out = cors_pb2.CorsPolicy()
    out.forward_not_matching_preflights.value = policy.get("unmatchedPreflights") != "IGNORE"
    if policy.get("allowOrigins") is not None:
        out.allow_origin_string_match.extend(string_matcher(m) for m in policy["allowOrigins"])
    elif policy.get("allowOrigin") is not None:
        out.allow_origin_string_match.extend(string_pb2.StringMatcher(exact=o) for o in policy["allowOrigin"])
    out.filter_enabled.default_value.CopyFrom(_hundred(100))
    if policy.get("allowCredentials") is not None:
        out.allow_credentials.value = policy["allowCredentials"]
    out.allow_headers = ",".join(policy.get("allowHeaders") or [])
    out.allow_methods = ",".join(policy.get("allowMethods") or [])
    out.expose_headers = ",".join(policy.get("exposeHeaders") or [])
    if policy.get("maxAge"):
        from meshctl.config.values import parse_duration

        out.max_age = str((parse_duration(policy["maxAge"]) or 0) // 1_000_000_000)
    return out


def _mirror_fraction(percentage: Mapping[str, Any] | None, legacy: int | None) -> percent_pb2.FractionalPercent | None:
    if percentage is not None:
        value = percentage.get("value", 0)
        return _fractional(value) if value > 0 else None
    if legacy is not None:
        return _hundred(legacy) if legacy > 0 else None
    return _hundred(100)


def _mirror(action: rc.RouteAction, cluster: str, fraction: percent_pb2.FractionalPercent) -> None:
    policy = action.request_mirror_policies.add(cluster=cluster)
    policy.runtime_fraction.default_value.CopyFrom(fraction)
    policy.trace_sampled.value = False
    policy.disable_shadow_host_suffix_append = True


def _redirect(route: rc.Route, redirect: Mapping[str, Any], port: int) -> bool:
    code = redirect.get("redirectCode", 0)
    if code not in _REDIRECT_CODES:
        return False
    target = route.redirect
    target.host_redirect = redirect.get("authority", "")
    target.path_redirect = redirect.get("uri", "")
    if redirect.get("scheme"):
        target.scheme_redirect = redirect["scheme"]
    if "port" in redirect or "derivePort" in redirect:
        number = redirect.get("port", 0)
        if redirect.get("derivePort") == "FROM_REQUEST_PORT":
            number = port
        scheme = redirect.get("scheme") or "http"
        if not ((number == 80 and scheme == "http") or (number == 443 and scheme == "https")):
            target.port_redirect = number
    target.response_code = _REDIRECT_CODES[code]
    return True


def build_route(rule: Mapping[str, Any], match: Mapping[str, Any] | None, *, vs_name: str,
                metadata: base_pb2.Metadata, listener_port: int, cluster_of: ClusterOf,
                hash_of: HashOf) -> rc.Route | None:
    """The Envoy route for one (http rule, match) pair, or None when the redirect code is unknown.

    `metadata` names the VirtualService (`istio.config`), built once per VirtualService."""
    route = rc.Route(name=rule.get("name", ""))
    if match is not None and match.get("name"):
        route.name = f"{route.name}.{match['name']}"
    route.match.CopyFrom(route_match(match))
    route.metadata.CopyFrom(metadata)
    if match is not None and match.get("statPrefix"):
        route.stat_prefix = match["statPrefix"]
    authority = ""
    if rule.get("headers"):
        operations = HeaderOperations(rule["headers"])
        operations.apply(route)
        authority = operations.authority
    if rule.get("redirect") is not None:
        if not _redirect(route, rule["redirect"], listener_port):
            return None
    elif rule.get("directResponse") is not None:
        response = rule["directResponse"]
        route.direct_response.status = response["status"]
        body = response.get("body") or {}
        if "string" in body:
            route.direct_response.body.inline_string = body["string"]
        elif "bytes" in body:
            route.direct_response.body.inline_bytes = parse_proto_bytes(body["bytes"]) or b""
    else:
        _route_action(route, rule, authority, listener_port, cluster_of, hash_of)
    route.decorator.operation = operation(route, vs_name, listener_port)
    if rule.get("fault"):
        fault = fault_config(rule["fault"])
        if fault is not None:
            route.typed_per_filter_config[FAULT_FILTER].CopyFrom(typed(fault))
    if rule.get("corsPolicy"):
        route.typed_per_filter_config[CORS_FILTER].CopyFrom(typed(cors_config(rule["corsPolicy"])))
    return route


def _route_action(route: rc.Route, rule: Mapping[str, Any], authority: str, port: int,
                  cluster_of: ClusterOf, hash_of: HashOf) -> None:
    action = route.route
    timeout = rule.get("timeout")
    if timeout:
        set_duration(action.timeout, timeout)
        set_duration(action.max_grpc_timeout, timeout)
    else:
        action.timeout.SetInParent()
        action.max_grpc_timeout.SetInParent()
    rewrite = rule.get("rewrite") or {}
    if rewrite.get("uriRegexRewrite"):
        regex = rewrite["uriRegexRewrite"]
        action.regex_rewrite.pattern.regex = regex.get("match", "")
        action.regex_rewrite.substitution = regex.get("rewrite", "")
    elif rewrite.get("uri"):
        action.prefix_rewrite = rewrite["uri"]
    if rewrite.get("authority"):
        authority = rewrite["authority"]
    if authority:
        action.host_rewrite_literal = authority
    if rule.get("mirror"):
        fraction = _mirror_fraction(rule.get("mirrorPercentage"), rule.get("mirrorPercent"))
        if fraction is not None:
            _mirror(action, cluster_of(rule["mirror"]), fraction)
    for mirror in rule.get("mirrors") or []:
        fraction = _mirror_fraction(mirror.get("percentage"), None)
        if fraction is not None and mirror.get("destination"):
            _mirror(action, cluster_of(mirror["destination"]), fraction)
    destinations = rule.get("route") or []
    consistent = False
    if len(destinations) == 1:
        destination = destinations[0]
        action.cluster = cluster_of(destination["destination"])
        if destination.get("headers"):
            operations = HeaderOperations(destination["headers"])
            operations.apply(route)
            if operations.authority and not action.host_rewrite_literal:
                action.host_rewrite_literal = operations.authority
        hashed = hash_of(destination["destination"])
        if hashed is not None:
            action.hash_policy.append(hashed)
            consistent = True
    else:
        for destination in destinations:
            if not destination.get("weight"):
                continue
            weighted = action.weighted_clusters.clusters.add(name=cluster_of(destination["destination"]))
            weighted.weight.value = destination["weight"]
            if destination.get("headers"):
                operations = HeaderOperations(destination["headers"])
                operations.apply(weighted)
                if operations.authority:
                    weighted.host_rewrite_literal = operations.authority
            hashed = hash_of(destination["destination"])
            if hashed is not None:
                action.hash_policy.append(hashed)
    policy = retry_policy(rule.get("retries"), consistent)
    if policy is not None:
        action.retry_policy.CopyFrom(policy)


def operation(route: rc.Route, vs_name: str, port: int) -> str:
    """The tracing decorator Istio derives from the route (host:port/path or vs:port/path)."""
    match = route.match
    which = match.WhichOneof("path_specifier")
    path = "/*"
    if which == "prefix":
        path = match.prefix + "*"
    elif which == "path":
        path = match.path
    elif which == "safe_regex":
        path = match.safe_regex.regex
    if route.WhichOneof("action") == "route" and route.route.WhichOneof("cluster_specifier") == "cluster":
        parsed = names.parse_cluster(route.route.cluster)
        if parsed is not None:
            return f"{parsed[3]}:{parsed[1]}{path}"
    return f"{vs_name}:{port}{path}"
