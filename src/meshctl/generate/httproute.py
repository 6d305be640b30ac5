"""One VirtualService HTTP rule and match → one Envoy Route (translation-spec §3.4–§3.5).

Small pure constructors, one per part of the rule (match, retries, fault, CORS, redirect,
headers), each from its typed view to its Envoy message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import previous_priorities_config_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2

from meshctl.config.kinds.common import Percent
from meshctl.config.kinds.networking.fields import Destination
from meshctl.config.kinds.networking.http import HeaderOperations, Headers, HTTPMatchRequest, StringMatch
from meshctl.config.kinds.networking.virtual_service import (
    CorsPolicy,
    HTTPFaultInjection,
    HTTPRedirect,
    HTTPRetry,
    HTTPRoute,
    HTTPRouteDestination,
)
from meshctl.generate import names
from meshctl.generate.protobuf import set_duration, typed
from meshctl.model.istio import quote_meta

__all__ = [
    "CORS_FILTER",
    "ClusterOf",
    "DEFAULT_RETRY_ON",
    "FAULT_FILTER",
    "HashOf",
    "HeaderMutations",
    "build_route",
    "cors_config",
    "default_retry_policy",
    "fault_config",
    "is_catch_all",
    "operation",
    "retry_policy",
    "route_match",
    "routed_destinations",
    "set_timeouts",
    "string_matcher",
]

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

# Resolves a VirtualService destination to its cluster name, and to its hash policy.
ClusterOf = Callable[[Destination], str]
HashOf = Callable[[Destination], "rc.RouteAction.HashPolicy | None"]


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


def retry_policy(retries: HTTPRetry | None, consistent_hash: bool) -> rc.RetryPolicy | None:
    """The route's retries: Istio's default when not given, none when `attempts` is 0."""
    if retries is None:
        return default_retry_policy(consistent_hash)
    if retries.attempts <= 0:
        return None
    policy = _default_retry_policy(consistent_hash)
    policy.num_retries.value = retries.attempts
    if retries.retry_on:
        parts = [p.strip() for p in retries.retry_on.split(",") if p.strip()]
        codes = [int(p) for p in parts if p.isdigit() and int(p) in _HTTP_CODES]
        words = [p for p in parts if not (p.isdigit() and int(p) in _HTTP_CODES)]
        policy.retry_on = ",".join(words)
        policy.retriable_status_codes.extend(codes)
        if codes and "retriable-status-codes" not in policy.retry_on:
            policy.retry_on += ",retriable-status-codes"
    if retries.per_try_timeout:
        set_duration(policy.per_try_timeout, retries.per_try_timeout)
    if retries.retry_ignore_previous_hosts is not None:
        del policy.retry_host_predicate[:]
        if retries.retry_ignore_previous_hosts:
            policy.retry_host_predicate.append(_previous_hosts())
    if retries.retry_remote_localities:
        config = previous_priorities_config_pb2.PreviousPrioritiesConfig(update_frequency=2)
        policy.retry_priority.name = "envoy.retry_priorities.previous_priorities"
        policy.retry_priority.typed_config.CopyFrom(typed(config))
    if retries.backoff:
        set_duration(policy.retry_back_off.base_interval, retries.backoff)
    return policy


_ANY_VALUE = StringMatch()


def _present(match: StringMatch | None) -> bool:
    """Istio turns an empty StringMatch, or regex `*`, into a presence check."""
    return match is None or match == _ANY_VALUE or match.regex == "*"


def string_matcher(match: StringMatch, *, ignore_case: bool = False) -> string_pb2.StringMatcher:
    out = string_pb2.StringMatcher(ignore_case=ignore_case)
    if match.exact is not None:
        out.exact = match.exact
    elif match.prefix is not None:
        out.prefix = match.prefix
    elif match.regex is not None:
        out.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=match.regex))
    return out


def _header(name: str, match: StringMatch | None) -> rc.HeaderMatcher:
    header = rc.HeaderMatcher(name=name)
    if match is None or _present(match):
        header.present_match = True
    else:
        header.string_match.CopyFrom(string_matcher(match))
    return header


def route_match(match: HTTPMatchRequest | None, gateway_semantics: bool = False) -> rc.RouteMatch:
    """Every condition of one HTTPMatchRequest that Envoy checks per request (no match: all).

    With the Gateway API's semantics a path prefix matches whole segments (`/foo` matches
    `/foo/bar` but not `/foobar`): Envoy's path_separated_prefix, trailing `/` removed."""
    out = rc.RouteMatch(prefix="/")
    if match is None:
        return out
    headers = [_header(name, value) for name, value in match.headers.items()]
    for name, value in match.without_headers.items():
        header = _header(name, value)
        header.invert_match = True
        if not _present(value):
            header.treat_missing_header_as_empty = True
        headers.append(header)
    headers.sort(key=lambda h: h.name)
    uri = match.uri
    if uri is not None:
        if uri.exact is not None:
            out.path = uri.exact
        elif uri.prefix is not None:
            if gateway_semantics and uri.prefix != "/":
                out.path_separated_prefix = uri.prefix[:-1] if uri.prefix.endswith("/") else uri.prefix
            else:
                out.prefix = uri.prefix
        elif uri.regex is not None:
            out.safe_regex.regex = uri.regex
    out.case_sensitive.value = not match.ignore_uri_case
    for pseudo, pseudo_match in ((":method", match.method), (":authority", match.authority),
                                 (":scheme", match.scheme)):
        if pseudo_match is not None:
            headers.append(_header(pseudo, pseudo_match))
    out.headers.extend(headers)
    for name in sorted(match.query_params):
        value = match.query_params[name]
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


def _header_options(values: Mapping[str, str], append: bool) -> tuple[list[base_pb2.HeaderValueOption], str]:
    """Header additions sorted by name; `:authority`/`host` become a host rewrite instead."""
    options = []
    authority = ""
    action = (base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD if append
              else base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD)
    for key in sorted(values):
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


def _dropped_internal(keys: Sequence[str]) -> list[str]:
    return [k for k in keys if not k.startswith(":") and k.lower() != "host"]


_NO_OPERATIONS = HeaderOperations()


class HeaderMutations:
    """Istio's translation of a `headers` block (route or destination level)."""

    def __init__(self, headers: Headers) -> None:
        request = headers.request or _NO_OPERATIONS
        response = headers.response or _NO_OPERATIONS
        set_options, set_authority = _header_options(request.set, False)
        add_options, add_authority = _header_options(request.add, True)
        self.request_add = set_options + add_options
        self.authority = set_authority or add_authority
        response_set, _ = _header_options(response.set, False)
        response_add, _ = _header_options(response.add, True)
        self.response_add = response_set + response_add
        self.request_remove = _dropped_internal(request.remove)
        self.response_remove = _dropped_internal(response.remove)

    def apply(self, target: rc.Route | rc.WeightedCluster.ClusterWeight) -> None:
        target.request_headers_to_add.extend(self.request_add)
        target.request_headers_to_remove.extend(self.request_remove)
        target.response_headers_to_add.extend(self.response_add)
        target.response_headers_to_remove.extend(self.response_remove)


def _fractional(value: float) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(numerator=int(value * 10000), denominator=percent_pb2.FractionalPercent.MILLION)


def _hundred(value: int) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(numerator=value, denominator=percent_pb2.FractionalPercent.HUNDRED)


def fault_config(fault: HTTPFaultInjection) -> fault_pb2.HTTPFault | None:
    """The fault filter's per-route config; None when neither a fixed delay nor an abort is set."""
    out = fault_pb2.HTTPFault()
    delay = fault.delay
    if delay is not None and delay.fixed_delay:
        target = out.delay
        if delay.percentage is not None:
            target.percentage.CopyFrom(_fractional(delay.percentage.value))
        else:
            target.percentage.CopyFrom(_hundred(delay.percent))
        set_duration(target.fixed_delay, delay.fixed_delay)
    abort = fault.abort
    if abort is not None and (abort.http_status is not None or abort.grpc_status):
        aborted = out.abort
        if abort.percentage is not None:
            aborted.percentage.CopyFrom(_fractional(abort.percentage.value))
        if abort.http_status is not None:
            aborted.http_status = abort.http_status
        else:
            status = abort.grpc_status
            aborted.grpc_status = _GRPC_CODES.get(status, int(status) if status.isdigit() else 2)
    if not out.HasField("delay") and not out.HasField("abort"):
        return None
    return out


def cors_config(policy: CorsPolicy) -> cors_pb2.CorsPolicy:
    out = cors_pb2.CorsPolicy()
    out.forward_not_matching_preflights.value = policy.unmatched_preflights != "IGNORE"
    if policy.allow_origins is not None:
        out.allow_origin_string_match.extend(string_matcher(m) for m in policy.allow_origins)
    elif policy.allow_origin is not None:
        out.allow_origin_string_match.extend(string_pb2.StringMatcher(exact=o) for o in policy.allow_origin)
    out.filter_enabled.default_value.CopyFrom(_hundred(100))
    if policy.allow_credentials is not None:
        out.allow_credentials.value = policy.allow_credentials
    out.allow_headers = ",".join(policy.allow_headers)
    out.allow_methods = ",".join(policy.allow_methods)
    out.expose_headers = ",".join(policy.expose_headers)
    if policy.max_age:
        out.max_age = str(policy.max_age // 1_000_000_000)
    return out


def _mirror_fraction(percentage: Percent | None, legacy: int | None) -> percent_pb2.FractionalPercent | None:
    if percentage is not None:
        return _fractional(percentage.value) if percentage.value > 0 else None
    if legacy is not None:
        return _hundred(legacy) if legacy > 0 else None
    return _hundred(100)


def _mirror(action: rc.RouteAction, cluster: str, fraction: percent_pb2.FractionalPercent) -> None:
    policy = action.request_mirror_policies.add(cluster=cluster)
    policy.runtime_fraction.default_value.CopyFrom(fraction)
    policy.trace_sampled.value = False
    policy.disable_shadow_host_suffix_append = True


_PREFIX_REPLACE = "%PREFIX()%"


def _redirect(route: rc.Route, redirect: HTTPRedirect, port: int, tls: bool, gateway_semantics: bool) -> bool:
    """A redirect; its port is left out when it is the scheme's default (the scheme defaulting
    to https on a TLS gateway server). The Gateway API's prefix replacement (`%PREFIX()%`)
    rewrites the matched prefix."""
    code = redirect.redirect_code
    if code not in _REDIRECT_CODES:
        return False
    target = route.redirect
    target.host_redirect = redirect.authority
    if gateway_semantics and redirect.uri.startswith(_PREFIX_REPLACE):
        target.prefix_rewrite = redirect.uri[len(_PREFIX_REPLACE):]
    else:
        target.path_redirect = redirect.uri
    if redirect.scheme:
        target.scheme_redirect = redirect.scheme
    if redirect.port is not None or redirect.derive_port:
        number = redirect.port or 0
        if redirect.derive_port == "FROM_REQUEST_PORT":
            number = port
        scheme = redirect.scheme or ("https" if tls else "http")
        if not ((number == 80 and scheme == "http") or (number == 443 and scheme == "https")):
            target.port_redirect = number
    target.response_code = _REDIRECT_CODES[code]
    return True


_NO_CORS = CorsPolicy()


def build_route(rule: HTTPRoute, match: HTTPMatchRequest | None, *, vs_name: str,
                metadata: base_pb2.Metadata, listener_port: int, cluster_of: ClusterOf,
                hash_of: HashOf, grpc_timeout_header: bool = False, tls: bool = False,
                gateway_semantics: bool = False) -> rc.Route | None:
    """The Envoy route for one (http rule, match) pair, or None when the redirect code is unknown.

    `metadata` names the VirtualService (`istio.config`), built once per VirtualService; see
    `set_timeouts` for `grpc_timeout_header`. `tls` is a gateway server with TLS settings;
    `gateway_semantics` a VirtualService made of a Gateway API route (see route_match; a missing
    backend answers 500)."""
    route = rc.Route(name=rule.name)
    if match is not None and match.name:
        route.name = f"{route.name}.{match.name}"
    route.match.CopyFrom(route_match(match, gateway_semantics))
    route.metadata.CopyFrom(metadata)
    if match is not None and match.stat_prefix:
        route.stat_prefix = match.stat_prefix
    authority = ""
    if rule.headers is not None:
        mutations = HeaderMutations(rule.headers)
        mutations.apply(route)
        authority = mutations.authority
    if rule.redirect is not None:
        if not _redirect(route, rule.redirect, listener_port, tls, gateway_semantics):
            return None
    elif rule.direct_response is not None:
        response = rule.direct_response
        route.direct_response.status = response.status
        body = response.body
        if body is not None and body.string is not None:
            route.direct_response.body.inline_string = body.string
        elif body is not None and body.bytes_ is not None:
            route.direct_response.body.inline_bytes = body.bytes_
    else:
        _route_action(route, rule, authority, listener_port, cluster_of, hash_of, grpc_timeout_header,
                      gateway_semantics)
    route.decorator.operation = operation(route, vs_name, listener_port)
    if rule.fault is not None:
        fault = fault_config(rule.fault)
        if fault is not None:
            route.typed_per_filter_config[FAULT_FILTER].CopyFrom(typed(fault))
    if rule.cors_policy is not None and rule.cors_policy != _NO_CORS:
        route.typed_per_filter_config[CORS_FILTER].CopyFrom(typed(cors_config(rule.cors_policy)))
    return route


def set_timeouts(action: rc.RouteAction, timeout: int, *, grpc_timeout_header: bool) -> None:
    """The route's timeout (nanoseconds, 0: none), which also caps a gRPC client's timeout
    header. Istio writes that cap in the deprecated `max_grpc_timeout`, which its proxy build
    takes silently; plain Envoy warns on every push, so for it (`grpc_timeout_header`) the cap is
    `max_stream_duration.grpc_timeout_header_max`, its replacement with the same meaning."""
    set_duration(action.timeout, timeout)
    cap = action.max_stream_duration.grpc_timeout_header_max if grpc_timeout_header else action.max_grpc_timeout
    set_duration(cap, timeout)


def _route_action(route: rc.Route, rule: HTTPRoute, authority: str, port: int,
                  cluster_of: ClusterOf, hash_of: HashOf, grpc_timeout_header: bool,
                  gateway_semantics: bool) -> None:
    action = route.route
    if gateway_semantics:
        action.cluster_not_found_response_code = rc.RouteAction.INTERNAL_SERVER_ERROR
    set_timeouts(action, rule.timeout or 0, grpc_timeout_header=grpc_timeout_header)
    rewrite = rule.rewrite
    if rewrite is not None:
        if rewrite.uri_regex_rewrite is not None:
            action.regex_rewrite.pattern.regex = rewrite.uri_regex_rewrite.match
            action.regex_rewrite.substitution = rewrite.uri_regex_rewrite.rewrite
        elif rewrite.uri == "/" and gateway_semantics and route.match.HasField("path_separated_prefix"):
            # Remove the whole prefix, keeping `/` when nothing is left of the path.
            action.regex_rewrite.pattern.regex = f"^{quote_meta(route.match.path_separated_prefix)}(/?)(.*)"
            action.regex_rewrite.substitution = r"/\2"
        elif rewrite.uri:
            action.prefix_rewrite = rewrite.uri
        if rewrite.authority:
            authority = rewrite.authority
    if authority:
        action.host_rewrite_literal = authority
    if rule.mirror is not None:
        fraction = _mirror_fraction(rule.mirror_percentage, rule.mirror_percent)
        if fraction is not None:
            _mirror(action, cluster_of(rule.mirror), fraction)
    for mirror in rule.mirrors:
        fraction = _mirror_fraction(mirror.percentage, None)
        if fraction is not None:
            _mirror(action, cluster_of(mirror.destination), fraction)
    destinations = routed_destinations(rule)
    consistent = False
    if len(rule.route) == 1:
        destination = destinations[0]
        action.cluster = cluster_of(destination.destination)
        if destination.headers is not None:
            mutations = HeaderMutations(destination.headers)
            mutations.apply(route)
            if mutations.authority and not action.host_rewrite_literal:
                action.host_rewrite_literal = mutations.authority
        hashed = hash_of(destination.destination)
        if hashed is not None:
            action.hash_policy.append(hashed)
            consistent = True
    else:
        for destination in destinations:
            weighted = action.weighted_clusters.clusters.add(name=cluster_of(destination.destination))
            weighted.weight.value = destination.weight
            if destination.headers is not None:
                mutations = HeaderMutations(destination.headers)
                mutations.apply(weighted)
                if mutations.authority:
                    weighted.host_rewrite_literal = mutations.authority
            hashed = hash_of(destination.destination)
            if hashed is not None:
                action.hash_policy.append(hashed)
    policy = retry_policy(rule.retries, consistent)
    if policy is not None:
        action.retry_policy.CopyFrom(policy)


def routed_destinations(rule: HTTPRoute) -> Sequence[HTTPRouteDestination]:
    """The destinations a rule's route resolves (`cluster_of`, then `hash_of`, each in turn),
    in that order, after its mirrors: its only one, or those of its weighted ones that carry
    weight; none when it redirects or answers directly."""
    if rule.redirect is not None or rule.direct_response is not None:
        return ()
    if len(rule.route) == 1:
        return rule.route
    return [destination for destination in rule.route if destination.weight]


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
