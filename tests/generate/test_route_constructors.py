"""The route constructors, table by table: a typed view in, the whole Envoy message out.

Inputs are built with the message classes, expected outputs with xds-protos classes, and each
pair is compared in full (as Contour's internal/envoy/v3 tests do), so a field set by mistake
fails a test as surely as a field left out.
"""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import previous_priorities_config_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message as Proto
from protoassert import assert_proto_equal

from meshctl.config.kinds.common import Percent, PortSelector
from meshctl.config.kinds.networking.fields import Destination
from meshctl.config.kinds.networking.http import HeaderOperations, Headers, HTTPMatchRequest, StringMatch
from meshctl.config.kinds.networking.virtual_service import (
    Abort,
    CorsPolicy,
    Delay,
    HTTPBody,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPMirrorPolicy,
    HTTPRedirect,
    HTTPRetry,
    HTTPRewrite,
    HTTPRoute,
    HTTPRouteDestination,
    RegexRewrite,
)
from meshctl.generate import httproute

MS = 1_000_000
HOST = "reviews.default.svc.cluster.local"
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
APPEND = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD


def packed(message: Proto) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message, deterministic=True)
    return out


def exact(value: str) -> string_pb2.StringMatcher:
    return string_pb2.StringMatcher(exact=value)


def regex(value: str) -> string_pb2.StringMatcher:
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=value))


def hundred(numerator: int) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(numerator=numerator, denominator=percent_pb2.FractionalPercent.HUNDRED)


def million(numerator: int) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(numerator=numerator, denominator=percent_pb2.FractionalPercent.MILLION)


def duration(nanos: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def retry(attempts: int = 2, retry_on: str = DEFAULT_RETRY_ON, *, previous_hosts: bool = True,
          **fields: object) -> rc.RetryPolicy:
    policy = rc.RetryPolicy(retry_on=retry_on, num_retries=wrappers_pb2.UInt32Value(value=attempts),
                            host_selection_retry_max_attempts=5, **fields)
    if previous_hosts:
        policy.retry_host_predicate.add(name="envoy.retry_host_predicates.previous_hosts",
                                        typed_config=packed(previous_hosts_pb2.PreviousHostsPredicate()))
    return policy


# --- route match ----------------------------------------------------------------------------------

EVERY_FIELD = HTTPMatchRequest(
    name="api", uri=StringMatch(regex="^/api/.*"), ignore_uri_case=True,
    headers={"zeta": StringMatch(exact="z"), "alpha": StringMatch(prefix="a"), "any": StringMatch(),
             "star": StringMatch(regex="*"), "empty": StringMatch(exact="")},
    without_headers={"beta": StringMatch(exact="b"), "gone": StringMatch(), "nostar": StringMatch(regex="*")},
    method=StringMatch(exact="POST"), authority=StringMatch(prefix="reviews"), scheme=StringMatch(regex="https?"),
    query_params={"q2": StringMatch(regex="x.*"), "q1": StringMatch(), "q3": StringMatch(exact="3")},
    # Conditions decided before a request arrives: they never reach Envoy's match.
    port=9080, source_labels={"app": "productpage"}, gateways=("mesh",), source_namespace="default",
    stat_prefix="api",
)


@pytest.mark.parametrize(("match", "expected"), [
    pytest.param(None, rc.RouteMatch(prefix="/"), id="no match: everything"),
    pytest.param(HTTPMatchRequest(), rc.RouteMatch(prefix="/", case_sensitive=wrappers_pb2.BoolValue(value=True)),
                 id="empty match"),
    pytest.param(HTTPMatchRequest(uri=StringMatch(exact="/a")),
                 rc.RouteMatch(path="/a", case_sensitive=wrappers_pb2.BoolValue(value=True)), id="exact uri"),
    pytest.param(HTTPMatchRequest(uri=StringMatch(prefix="")),
                 rc.RouteMatch(prefix="", case_sensitive=wrappers_pb2.BoolValue(value=True)), id="empty prefix"),
    pytest.param(HTTPMatchRequest(uri=StringMatch()),
                 rc.RouteMatch(prefix="/", case_sensitive=wrappers_pb2.BoolValue(value=True)), id="empty uri"),
    pytest.param(EVERY_FIELD, rc.RouteMatch(
        safe_regex=regex_pb2.RegexMatcher(regex="^/api/.*"),
        case_sensitive=wrappers_pb2.BoolValue(value=False),
        headers=[
            rc.HeaderMatcher(name="alpha", string_match=string_pb2.StringMatcher(prefix="a")),
            rc.HeaderMatcher(name="any", present_match=True),
            rc.HeaderMatcher(name="beta", string_match=exact("b"), invert_match=True,
                             treat_missing_header_as_empty=True),
            rc.HeaderMatcher(name="empty", string_match=exact("")),
            rc.HeaderMatcher(name="gone", present_match=True, invert_match=True),
            rc.HeaderMatcher(name="nostar", present_match=True, invert_match=True),
            rc.HeaderMatcher(name="star", present_match=True),
            rc.HeaderMatcher(name="zeta", string_match=exact("z")),
            rc.HeaderMatcher(name=":method", string_match=exact("POST")),
            rc.HeaderMatcher(name=":authority", string_match=string_pb2.StringMatcher(prefix="reviews")),
            rc.HeaderMatcher(name=":scheme", string_match=regex("https?")),
        ],
        query_parameters=[
            rc.QueryParameterMatcher(name="q1", present_match=True),
            rc.QueryParameterMatcher(name="q2", string_match=regex("x.*")),
            rc.QueryParameterMatcher(name="q3", string_match=exact("3")),
        ],
    ), id="every field"),
])
def test_route_match(match: HTTPMatchRequest | None, expected: rc.RouteMatch) -> None:
    assert_proto_equal(httproute.route_match(match), expected)


# --- retries --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("retries", "consistent_hash", "expected"), [
    pytest.param(None, False, retry(), id="not given: Istio's default"),
    pytest.param(None, True, retry(previous_hosts=False), id="default with consistent hashing"),
    pytest.param(HTTPRetry(attempts=0, retry_on="5xx"), False, None, id="attempts 0: no retries"),
    pytest.param(HTTPRetry(attempts=3), False, retry(3), id="attempts only"),
    pytest.param(HTTPRetry(attempts=4, per_try_timeout=250 * MS, retry_on="gateway-error,503, 425 ,connect-failure",
                           retry_remote_localities=True, retry_ignore_previous_hosts=False, backoff=10 * MS), False,
                 retry(4, "gateway-error,connect-failure,retriable-status-codes", previous_hosts=False,
                       retriable_status_codes=[503, 425], per_try_timeout=duration(250 * MS),
                       retry_priority=rc.RetryPolicy.RetryPriority(
                           name="envoy.retry_priorities.previous_priorities",
                           typed_config=packed(previous_priorities_config_pb2.PreviousPrioritiesConfig(
                               update_frequency=2))),
                       retry_back_off=rc.RetryPolicy.RetryBackOff(base_interval=duration(10 * MS))),
                 id="every field"),
    pytest.param(HTTPRetry(attempts=1, retry_on="retriable-status-codes,599,5xx"), False,
                 retry(1, "retriable-status-codes,599,5xx"), id="599 is no HTTP status Istio knows"),
    pytest.param(HTTPRetry(attempts=2, retry_ignore_previous_hosts=True), True, retry(2),
                 id="previous hosts asked for despite hashing"),
])
def test_retry_policy(retries: HTTPRetry | None, consistent_hash: bool, expected: rc.RetryPolicy | None) -> None:
    assert_proto_equal(httproute.retry_policy(retries, consistent_hash), expected)


# --- fault injection ------------------------------------------------------------------------------

@pytest.mark.parametrize(("fault", "expected"), [
    pytest.param(HTTPFaultInjection(delay=Delay(fixed_delay=2 * 1000 * MS, percentage=Percent(value=12.5))),
                 fault_pb2.HTTPFault(delay={"fixed_delay": duration(2000 * MS), "percentage": million(125_000)}),
                 id="delay with percentage"),
    pytest.param(HTTPFaultInjection(delay=Delay(fixed_delay=5 * MS, percent=30)),
                 fault_pb2.HTTPFault(delay={"fixed_delay": duration(5 * MS), "percentage": hundred(30)}),
                 id="delay with the deprecated percent"),
    pytest.param(HTTPFaultInjection(abort=Abort(http_status=503, percentage=Percent(value=0.1))),
                 fault_pb2.HTTPFault(abort={"http_status": 503, "percentage": million(1000)}),
                 id="HTTP abort"),
    pytest.param(HTTPFaultInjection(abort=Abort(grpc_status="UNAVAILABLE")),
                 fault_pb2.HTTPFault(abort={"grpc_status": 14}), id="gRPC abort"),
    pytest.param(HTTPFaultInjection(delay=Delay(fixed_delay=MS), abort=Abort(grpc_status="DEADLINE_EXCEEDED")),
                 fault_pb2.HTTPFault(delay={"fixed_delay": duration(MS), "percentage": hundred(0)},
                                     abort={"grpc_status": 4}),
                 id="both"),
    pytest.param(HTTPFaultInjection(abort=Abort(http2_error="REFUSED_STREAM")), None,
                 id="nothing Envoy can inject"),
])
def test_fault_config(fault: HTTPFaultInjection, expected: fault_pb2.HTTPFault | None) -> None:
    assert_proto_equal(httproute.fault_config(fault), expected)


# --- CORS -----------------------------------------------------------------------------------------

def cors(**fields: object) -> cors_pb2.CorsPolicy:
    defaults: dict[str, object] = {"filter_enabled": {"default_value": hundred(100)},
                                   "forward_not_matching_preflights": wrappers_pb2.BoolValue(value=True)}
    return cors_pb2.CorsPolicy(**(defaults | fields))


@pytest.mark.parametrize(("policy", "expected"), [
    pytest.param(CorsPolicy(), cors(), id="empty"),
    pytest.param(CorsPolicy(allow_origins=(StringMatch(exact="https://a.example"), StringMatch(prefix="https://b."),
                                           StringMatch(regex=".*\\.c\\.example")),
                            allow_methods=("GET", "PUT"), allow_headers=("x-a", "x-b"), expose_headers=("x-c",),
                            max_age=3600 * 1000 * MS, allow_credentials=False),
                 cors(allow_origin_string_match=[exact("https://a.example"),
                                                 string_pb2.StringMatcher(prefix="https://b."),
                                                 regex(".*\\.c\\.example")],
                      allow_methods="GET,PUT", allow_headers="x-a,x-b", expose_headers="x-c", max_age="3600",
                      allow_credentials=wrappers_pb2.BoolValue(value=False)),
                 id="every field"),
    pytest.param(CorsPolicy(allow_origin=("https://old.example",)),
                 cors(allow_origin_string_match=[exact("https://old.example")]), id="deprecated exact origins"),
    pytest.param(CorsPolicy(allow_origins=(), allow_origin=("https://old.example",)), cors(),
                 id="allowOrigins given, even empty, wins"),
    pytest.param(CorsPolicy(unmatched_preflights="IGNORE"),
                 cors(forward_not_matching_preflights=wrappers_pb2.BoolValue(value=False)),
                 id="unmatched preflights ignored"),
])
def test_cors_config(policy: CorsPolicy, expected: cors_pb2.CorsPolicy) -> None:
    assert_proto_equal(httproute.cors_config(policy), expected)


# --- whole routes: destinations, mirrors, redirects, direct responses, rewrites, headers ---------

def _metadata() -> base_pb2.Metadata:
    metadata = base_pb2.Metadata()
    config = "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"
    metadata.filter_metadata["istio"].update({"config": config})
    return metadata


METADATA = _metadata()


def cluster_of(destination: Destination) -> str:
    port = destination.port.number if destination.port else 9080
    return f"outbound|{port}|{destination.subset}|{destination.host}"


def no_hash(destination: Destination) -> rc.RouteAction.HashPolicy | None:
    return None


def by_subset(destination: Destination) -> rc.RouteAction.HashPolicy | None:
    """Hash on a header for subset v2 only: which destinations consult the hash, and in what order."""
    if destination.subset != "v2":
        return None
    return rc.RouteAction.HashPolicy(header={"header_name": "x-user"})


def to(subset: str = "", weight: int = 0, headers: Headers | None = None) -> HTTPRouteDestination:
    return HTTPRouteDestination(destination=Destination(host=HOST, subset=subset), weight=weight, headers=headers)


def expected_route(action: rc.RouteAction | None = None, *, operation: str = f"{HOST}:9080/*",
                   **fields: object) -> rc.Route:
    route = rc.Route(match=rc.RouteMatch(prefix="/"), metadata=METADATA,
                     decorator=rc.Decorator(operation=operation), **fields)
    if action is not None:
        route.route.CopyFrom(action)
    return route


def action(cluster: str = f"outbound|9080||{HOST}", **fields: object) -> rc.RouteAction:
    defaults: dict[str, object] = {"timeout": duration_pb2.Duration(), "max_grpc_timeout": duration_pb2.Duration(),
                                   "retry_policy": retry()}
    out = rc.RouteAction(**(defaults | fields))
    if cluster:
        out.cluster = cluster
    return out


def weighted(subset: str, weight: int, **fields: object) -> rc.WeightedCluster.ClusterWeight:
    return rc.WeightedCluster.ClusterWeight(name=f"outbound|9080|{subset}|{HOST}",
                                            weight=wrappers_pb2.UInt32Value(value=weight), **fields)


def header(key: str, value: str, how: int) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value), append_action=how)


def mirror(cluster: str, fraction: percent_pb2.FractionalPercent) -> rc.RouteAction.RequestMirrorPolicy:
    return rc.RouteAction.RequestMirrorPolicy(cluster=cluster, runtime_fraction={"default_value": fraction},
                                              trace_sampled=wrappers_pb2.BoolValue(value=False),
                                              disable_shadow_host_suffix_append=True)


ROUTES = [
    pytest.param(HTTPRoute(route=(to(),)), no_hash, expected_route(action()), id="one destination"),
    pytest.param(HTTPRoute(name="split", route=(to("v1", 70), to("v2", 30), to("v3", 0))), by_subset, expected_route(
        action("", weighted_clusters=rc.WeightedCluster(clusters=[
            weighted("v1", 70),
            weighted("v2", 30),
        ]), hash_policy=[rc.RouteAction.HashPolicy(header={"header_name": "x-user"})]),
        name="split", operation="reviews:9080/*"), id="weights: zero dropped, hashing keeps retry hosts"),
    pytest.param(HTTPRoute(route=(to("v2"),)), by_subset, expected_route(action(
        f"outbound|9080|v2|{HOST}", hash_policy=[rc.RouteAction.HashPolicy(header={"header_name": "x-user"})],
        retry_policy=retry(previous_hosts=False))), id="one hashed destination"),
    pytest.param(HTTPRoute(route=(to(),), timeout=1500 * MS, retries=HTTPRetry(attempts=0)), no_hash,
                 expected_route(rc.RouteAction(cluster=f"outbound|9080||{HOST}", timeout=duration(1500 * MS),
                                               max_grpc_timeout=duration(1500 * MS))),
                 id="timeout, retries off"),
    pytest.param(HTTPRoute(route=(to(),), mirror=Destination(host="ratings", port=PortSelector(number=9090)),
                           mirror_percentage=Percent(value=0.5),
                           mirrors=(HTTPMirrorPolicy(destination=Destination(host="shadow")),
                                    HTTPMirrorPolicy(destination=Destination(host="off"), percentage=Percent()))),
                 no_hash, expected_route(action(request_mirror_policies=[
                     mirror("outbound|9090||ratings", million(5000)), mirror("outbound|9080||shadow", hundred(100))])),
                 id="mirrors: 0% dropped"),
    pytest.param(HTTPRoute(route=(to(),), mirror=Destination(host="ratings"), mirror_percent=25), no_hash,
                 expected_route(action(request_mirror_policies=[mirror("outbound|9080||ratings", hundred(25))])),
                 id="deprecated mirror percent"),
    pytest.param(HTTPRoute(route=(to(),), rewrite=HTTPRewrite(uri="/new/", authority="reviews.internal")), no_hash,
                 expected_route(action(prefix_rewrite="/new/", host_rewrite_literal="reviews.internal")),
                 id="rewrite"),
    pytest.param(HTTPRoute(route=(to(),), rewrite=HTTPRewrite(
        uri_regex_rewrite=RegexRewrite(match="^/rx/(.*)$", rewrite="/\\1"))), no_hash,
        expected_route(action(regex_rewrite={"pattern": {"regex": "^/rx/(.*)$"}, "substitution": "/\\1"})),
        id="regex rewrite"),
    pytest.param(HTTPRoute(redirect=HTTPRedirect(uri="/b", authority="new.example", redirect_code=308,
                                                 scheme="https", port=8443)), no_hash,
                 expected_route(redirect=rc.RedirectAction(
                     path_redirect="/b", host_redirect="new.example", scheme_redirect="https", port_redirect=8443,
                     response_code=rc.RedirectAction.PERMANENT_REDIRECT), operation="reviews:9080/*"),
                 id="redirect"),
    pytest.param(HTTPRoute(redirect=HTTPRedirect(uri="/d", derive_port="FROM_REQUEST_PORT")), no_hash,
                 expected_route(redirect=rc.RedirectAction(path_redirect="/d", port_redirect=9080),
                                operation="reviews:9080/*"), id="redirect to the request's port"),
    pytest.param(HTTPRoute(redirect=HTTPRedirect(scheme="https", port=443, redirect_code=302)), no_hash,
                 # path_redirect "" is set (today's output; Istio leaves the path alone when uri is empty)
                 expected_route(redirect=rc.RedirectAction(scheme_redirect="https", path_redirect="",
                                                           response_code=rc.RedirectAction.FOUND),
                                operation="reviews:9080/*"), id="redirect to the scheme's own port"),
    pytest.param(HTTPRoute(direct_response=HTTPDirectResponse(status=418, body=HTTPBody(string="short and stout"))),
                 no_hash, expected_route(direct_response=rc.DirectResponseAction(
                     status=418, body={"inline_string": "short and stout"}), operation="reviews:9080/*"),
                 id="direct response"),
    pytest.param(HTTPRoute(direct_response=HTTPDirectResponse(status=200, body=HTTPBody(bytes_=b"\xfb\xff"))),
                 no_hash, expected_route(direct_response=rc.DirectResponseAction(
                     status=200, body={"inline_bytes": b"\xfb\xff"}), operation="reviews:9080/*"),
                 id="direct response bytes"),
    pytest.param(HTTPRoute(
        headers=Headers(request=HeaderOperations(set={"b-set": "2", "a-set": "1", "host": "from-set"},
                                                 add={"c-add": "3"}, remove=("x-drop", ":path", "Host")),
                        response=HeaderOperations(add={"x-resp": "r"}, remove=("server",))),
        route=(to("v1", 50, Headers(request=HeaderOperations(set={":authority": "canary.local"}))),
               to("v2", 50, Headers(response=HeaderOperations(set={"x-v": "2"}))))),
        no_hash, expected_route(
            action("", host_rewrite_literal="from-set", weighted_clusters=rc.WeightedCluster(clusters=[
                weighted("v1", 50, host_rewrite_literal="canary.local"),
                weighted("v2", 50, response_headers_to_add=[header("x-v", "2", OVERWRITE)]),
            ])),
            request_headers_to_add=[header("a-set", "1", OVERWRITE), header("b-set", "2", OVERWRITE),
                                    header("c-add", "3", APPEND)],
            request_headers_to_remove=["x-drop"],
            response_headers_to_add=[header("x-resp", "r", APPEND)], response_headers_to_remove=["server"],
            operation="reviews:9080/*"),
        id="headers: sorted, set before add, host becomes a rewrite"),
    pytest.param(HTTPRoute(route=(to(),), fault=HTTPFaultInjection(abort=Abort(http_status=503)),
                           cors_policy=CorsPolicy(allow_methods=("GET",))), no_hash,
                 expected_route(action(), typed_per_filter_config={
                     "envoy.filters.http.fault": packed(fault_pb2.HTTPFault(abort={"http_status": 503})),
                     "envoy.filters.http.cors": packed(cors(allow_methods="GET")),
                 }), id="fault and CORS per route"),
    pytest.param(HTTPRoute(route=(to(),), cors_policy=CorsPolicy()), no_hash, expected_route(action()),
                 id="empty CORS policy sets nothing"),
]


@pytest.mark.parametrize(("rule", "hash_of", "expected"), ROUTES)
def test_build_route(rule: HTTPRoute, hash_of: httproute.HashOf, expected: rc.Route) -> None:
    built = httproute.build_route(rule, None, vs_name="reviews", metadata=METADATA, listener_port=9080,
                                  cluster_of=cluster_of, hash_of=hash_of)
    assert_proto_equal(built, expected)


def test_build_route_names_the_match_and_sets_its_stat_prefix() -> None:
    match = HTTPMatchRequest(name="jason", stat_prefix="jason-stats", headers={"end-user": StringMatch(exact="jason")},
                             uri=StringMatch(prefix="/api"))
    built = httproute.build_route(HTTPRoute(name="r", route=(to("v2"),)), match, vs_name="reviews",
                                  metadata=METADATA, listener_port=9080, cluster_of=cluster_of, hash_of=no_hash)
    expected = expected_route(action(f"outbound|9080|v2|{HOST}"), name="r.jason", stat_prefix="jason-stats",
                              operation=f"{HOST}:9080/api*")
    expected.match.CopyFrom(httproute.route_match(match))
    assert_proto_equal(built, expected)


def test_an_unknown_redirect_code_drops_the_route() -> None:
    rule = HTTPRoute(redirect=HTTPRedirect(uri="/x", redirect_code=304))
    assert httproute.build_route(rule, None, vs_name="reviews", metadata=METADATA, listener_port=9080,
                                 cluster_of=cluster_of, hash_of=no_hash) is None

