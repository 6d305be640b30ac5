"""VirtualService HTTP routes → Envoy routes: matches, actions, precedence (translation-spec §3)."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2

from testsupport import cluster, vhost

REVIEWS = "reviews.default.svc.cluster.local:9080"


def _vs(http: str, name: str = "reviews", hosts: str = "[reviews]", extra: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: {hosts}
{extra}  http:
{http}
"""


def _routes(client_config, http: str) -> list[rc.Route]:
    return list(vhost(client_config(_vs(http)), "9080", REVIEWS).routes)


def test_match_fields_translate_in_istio_order(client_config) -> None:
    (route, _) = _routes(client_config, """
  - match:
    - uri: {regex: "^/api/.*"}
      ignoreUriCase: true
      headers: {zeta: {exact: z}, alpha: {prefix: a}, any: {}}
      withoutHeaders: {beta: {exact: b}, gone: {}}
      method: {exact: POST}
      authority: {exact: reviews}
      scheme: {exact: https}
      queryParams: {q2: {regex: "x.*"}, q1: {}}
    route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
""")
    match = route.match
    assert match.safe_regex.regex == "^/api/.*"
    assert match.HasField("case_sensitive") and match.case_sensitive.value is False
    names = [h.name for h in match.headers]
    assert names == ["alpha", "any", "beta", "gone", "zeta", ":method", ":authority", ":scheme"]
    by_name = {h.name: h for h in match.headers}
    assert by_name["any"].present_match and by_name["gone"].present_match and by_name["gone"].invert_match
    assert not by_name["gone"].treat_missing_header_as_empty
    assert by_name["beta"].invert_match and by_name["beta"].treat_missing_header_as_empty
    assert by_name["alpha"].string_match.prefix == "a"
    assert [q.name for q in match.query_parameters] == ["q1", "q2"]
    assert match.query_parameters[0].present_match
    assert match.query_parameters[1].string_match.safe_regex.regex == "x.*"


def test_catch_all_route_ends_the_virtual_service(client_config) -> None:
    routes = _routes(client_config, """
  - match: [{uri: {prefix: /a}}, {uri: {prefix: /}}, {uri: {prefix: /never}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v2}}]
""")
    assert [r.match.prefix for r in routes] == ["/a", "/"]
    assert all(r.route.cluster.endswith("|v1|reviews.default.svc.cluster.local") for r in routes)


def test_static_conditions_drop_routes_for_this_proxy(client_config) -> None:
    routes = _routes(client_config, """
  - match: [{sourceLabels: {app: someone-else}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{port: 9999}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{sourceNamespace: other}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{sourceLabels: {app: client}, headers: {x: {exact: "1"}}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews}}]
""")
    assert [r.route.cluster for r in routes] == [
        "outbound|9080|v1|reviews.default.svc.cluster.local",
        "outbound|9080||reviews.default.svc.cluster.local",
    ]


def test_weighted_destinations_drop_zero_weights_and_carry_headers(client_config) -> None:
    (route,) = _routes(client_config, """
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 70
    - destination: {host: reviews, subset: v2}
      weight: 30
      headers: {request: {set: {x-canary: "1", ":authority": canary.local}}}
    - destination: {host: ratings}
      weight: 0
""")
    clusters = route.route.weighted_clusters.clusters
    assert [(c.name, c.weight.value) for c in clusters] == [
        ("outbound|9080|v1|reviews.default.svc.cluster.local", 70),
        ("outbound|9080|v2|reviews.default.svc.cluster.local", 30),
    ]
    assert [h.header.key for h in clusters[1].request_headers_to_add] == ["x-canary"]
    assert clusters[1].host_rewrite_literal == "canary.local"
    assert route.decorator.operation == "reviews:9080/*"


def test_retries_timeouts_and_istio_defaults(client_config) -> None:
    custom, disabled, default = _routes(client_config, """
  - match: [{uri: {prefix: /c}}]
    timeout: 1.5s
    retries: {attempts: 4, perTryTimeout: 250ms, retryOn: "gateway-error,503,425,connect-failure", retryRemoteLocalities: true, retryIgnorePreviousHosts: false, backoff: 10ms}
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /d}}]
    retries: {attempts: 0}
    route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
""")
    action = custom.route
    assert (action.timeout.seconds, action.timeout.nanos) == (1, 500_000_000)
    assert action.max_stream_duration.grpc_timeout_header_max == action.timeout
    assert not action.HasField("max_grpc_timeout")  # deprecated: only istio-proxy gets it, as from istiod
    policy = action.retry_policy
    assert policy.num_retries.value == 4
    assert policy.retry_on == "gateway-error,connect-failure,retriable-status-codes"
    assert list(policy.retriable_status_codes) == [503, 425]
    assert policy.per_try_timeout.nanos == 250_000_000
    assert policy.retry_priority.name == "envoy.retry_priorities.previous_priorities"
    assert not policy.retry_host_predicate
    assert policy.retry_back_off.base_interval.nanos == 10_000_000
    assert not disabled.route.HasField("retry_policy")
    default_policy = default.route.retry_policy
    assert default_policy.retry_on == "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    assert default_policy.num_retries.value == 2 and not default_policy.retriable_status_codes
    assert default_policy.host_selection_retry_max_attempts == 5
    assert [p.name for p in default_policy.retry_host_predicate] == ["envoy.retry_host_predicates.previous_hosts"]
    assert default.route.HasField("timeout") and default.route.timeout.seconds == 0


def test_redirects_direct_responses_and_rewrites(client_config) -> None:
    permanent, derived, plain_port, teapot, rewrite, regex = _routes(client_config, """
  - match: [{uri: {prefix: /a}}]
    redirect: {uri: /b, authority: new.example, redirectCode: 308, scheme: https, port: 8443}
  - match: [{uri: {prefix: /c}}]
    redirect: {uri: /d, derivePort: FROM_REQUEST_PORT}
  - match: [{uri: {prefix: /e}}]
    redirect: {uri: /f, port: 80}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - match: [{uri: {prefix: /old/}}]
    rewrite: {uri: /new/, authority: reviews.internal}
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /rx}}]
    rewrite: {uriRegexRewrite: {match: "^/rx/(.*)$", rewrite: '/\\1'}}
    route: [{destination: {host: reviews}}]
""")
    assert permanent.redirect.response_code == rc.RedirectAction.PERMANENT_REDIRECT
    assert (permanent.redirect.host_redirect, permanent.redirect.path_redirect) == ("new.example", "/b")
    assert (permanent.redirect.scheme_redirect, permanent.redirect.port_redirect) == ("https", 8443)
    assert derived.redirect.port_redirect == 9080
    assert derived.redirect.response_code == rc.RedirectAction.MOVED_PERMANENTLY
    assert plain_port.redirect.port_redirect == 0
    assert teapot.direct_response.status == 418 and teapot.direct_response.body.inline_string == "short and stout"
    assert teapot.match.path == "/teapot"
    assert rewrite.route.prefix_rewrite == "/new/" and rewrite.route.host_rewrite_literal == "reviews.internal"
    assert regex.route.regex_rewrite.pattern.regex == "^/rx/(.*)$"
    assert regex.route.regex_rewrite.substitution == "/\\1"


def test_direct_response_bytes_take_protobuf_json_base64(client_config) -> None:
    """Like protobuf's JSON parser (and so Istio), body bytes may be URL-safe and unpadded; the
    fuzzer found the translator crashing on what the validator had accepted."""
    unpadded, url_safe = _routes(client_config, """
  - match: [{uri: {exact: /a}}]
    directResponse: {status: 200, body: {bytes: "aGk"}}
  - match: [{uri: {exact: /b}}]
    directResponse: {status: 200, body: {bytes: "-_8"}}
""")
    assert unpadded.direct_response.body.inline_bytes == b"hi"
    assert url_safe.direct_response.body.inline_bytes == b"\xfb\xff"


def test_fault_mirror_and_cors(client_config) -> None:
    (route, mirrored, mirrors) = _routes(client_config, """
  - match: [{uri: {prefix: /f}}]
    fault:
      delay: {fixedDelay: 2s, percentage: {value: 12.5}}
      abort: {grpcStatus: UNAVAILABLE}
    corsPolicy:
      allowOrigins: [{exact: "https://a.example"}, {prefix: "https://b."}]
      allowMethods: [GET, PUT]
      allowHeaders: [x-a, x-b]
      exposeHeaders: [x-c]
      maxAge: 1h
      allowCredentials: false
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /m}}]
    mirror: {host: ratings}
    mirrorPercentage: {value: 0.5}
    route: [{destination: {host: reviews}}]
  - mirrors:
    - destination: {host: reviews, subset: v2}
    - destination: {host: reviews, subset: v1}
      percentage: {value: 0}
    route: [{destination: {host: reviews}}]
""")
    fault = fault_pb2.HTTPFault()
    route.typed_per_filter_config["envoy.filters.http.fault"].Unpack(fault)
    assert fault.delay.fixed_delay.seconds == 2
    assert (fault.delay.percentage.numerator, fault.delay.percentage.denominator) == (125_000, 2)
    assert fault.abort.grpc_status == 14 and not fault.abort.HasField("percentage")
    cors = cors_pb2.CorsPolicy()
    route.typed_per_filter_config["envoy.filters.http.cors"].Unpack(cors)
    assert [m.exact or m.prefix for m in cors.allow_origin_string_match] == ["https://a.example", "https://b."]
    assert (cors.allow_methods, cors.allow_headers, cors.expose_headers, cors.max_age) == ("GET,PUT", "x-a,x-b", "x-c", "3600")
    assert cors.allow_credentials.value is False and cors.forward_not_matching_preflights.value is True
    assert cors.filter_enabled.default_value.numerator == 100
    (single,) = mirrored.route.request_mirror_policies
    assert single.cluster == "outbound|9080||ratings.default.svc.cluster.local"
    assert (single.runtime_fraction.default_value.numerator, single.runtime_fraction.default_value.denominator) == (5000, 2)
    (listed,) = mirrors.route.request_mirror_policies
    assert listed.cluster == "outbound|9080|v2|reviews.default.svc.cluster.local", "a 0% mirror is dropped"
    assert listed.runtime_fraction.default_value.numerator == 100 and listed.runtime_fraction.default_value.denominator == 0
    assert all(p.disable_shadow_host_suffix_append and p.HasField("trace_sampled") for p in (single, listed))


def test_header_operations_sorted_set_before_add_and_host_becomes_a_rewrite(client_config) -> None:
    (route,) = _routes(client_config, """
  - headers:
      request:
        set: {b-set: "2", a-set: "1", host: from-set}
        add: {c-add: "3"}
        remove: [x-drop]
      response:
        add: {x-resp: "r"}
        remove: [server]
    route: [{destination: {host: reviews}}]
""")
    added = [(h.header.key, h.append_action) for h in route.request_headers_to_add]
    overwrite, append = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD, base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD
    assert added == [("a-set", overwrite), ("b-set", overwrite), ("c-add", append)]
    assert list(route.request_headers_to_remove) == ["x-drop"]
    assert route.route.host_rewrite_literal == "from-set"
    assert [h.header.key for h in route.response_headers_to_add] == ["x-resp"]
    assert list(route.response_headers_to_remove) == ["server"]


def test_first_virtual_service_wins_a_host_and_the_rest_keep_defaults(client_config) -> None:
    older = _vs("  - route: [{destination: {host: reviews, subset: v1}}]", name="older").replace(
        "metadata: {name: older, namespace: default}",
        "metadata: {name: older, namespace: default, creationTimestamp: '2024-01-01T00:00:00Z'}",
    )
    newer = _vs("  - route: [{destination: {host: reviews, subset: v2}}]", name="newer").replace(
        "metadata: {name: newer, namespace: default}",
        "metadata: {name: newer, namespace: default, creationTimestamp: '2025-01-01T00:00:00Z'}",
    )
    config = client_config(newer + "---\n" + older)
    (route,) = vhost(config, "9080", REVIEWS).routes
    assert route.route.cluster == "outbound|9080|v1|reviews.default.svc.cluster.local"
    ratings = vhost(config, "9080", "ratings.default.svc.cluster.local:9080")
    assert [r.name for r in ratings.routes] == ["default"]


def test_default_routes_domains_and_catch_all(client_config) -> None:
    config = client_config()
    reviews = vhost(config, "9080", REVIEWS)
    (route,) = reviews.routes
    assert route.name == "default" and route.route.cluster == "outbound|9080||reviews.default.svc.cluster.local"
    assert not route.match.HasField("case_sensitive")
    assert route.decorator.operation == "reviews.default.svc.cluster.local:9080/*"
    assert reviews.include_request_attempt_count
    (route_config,) = [r for r in config.routes if r.name == "9080"]
    assert [vh.name for vh in route_config.virtual_hosts][-1] == "allow_any"
    assert route_config.ignore_port_in_host_matching and route_config.validate_clusters.value is False
    assert route_config.max_direct_response_body_size_bytes.value == 1048576


def test_domains_for_a_proxy_in_another_namespace(client_config) -> None:
    other = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: outsider, namespace: other}
spec:
  selector: {matchLabels: {app: outsider}}
  template:
    metadata: {labels: {app: outsider}}
    spec: {containers: [{name: o, image: o}]}
"""
    config = client_config(other, target="deploy/outsider.other")
    assert list(vhost(config, "9080", REVIEWS).domains) == [
        "reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local.",
        "reviews.default", "reviews.default.svc", "10.96.0.50",
    ]


def test_port_80_keeps_non_registry_hosts(client_config) -> None:
    config = client_config(_vs("  - route: [{destination: {host: reviews}}]", name="bookinfo",
                               hosts="[bookinfo.com]").replace("kind: VirtualService", "kind: VirtualService", 1))
    assert not any(r.name == "80" for r in config.routes)
    with_port_80 = client_config("""
apiVersion: v1
kind: Service
metadata: {name: front, namespace: default}
spec:
  ports: [{name: http, port: 80}]
---
""" + _vs("  - route: [{destination: {host: reviews, port: {number: 9080}}}]", name="bookinfo", hosts="[bookinfo.com]"))
    bookinfo = vhost(with_port_80, "80", "bookinfo.com:80")
    assert list(bookinfo.domains) == ["bookinfo.com"]
    assert bookinfo.routes[0].route.cluster == "outbound|9080||reviews.default.svc.cluster.local"


def test_unknown_route_names_get_an_empty_configuration(client_config, mesh, write_yaml) -> None:
    from testsupport import BASE
    from meshctl.generate.context import ProxyContext
    from meshctl.generate.routes import route_configuration

    snapshot = mesh(write_yaml(BASE))
    proxy = snapshot.proxy("deploy/client.default")
    config = route_configuration(ProxyContext(snapshot, proxy, snapshot.scope_for(proxy)), "no-such-route").message
    assert config.name == "no-such-route" and not config.virtual_hosts


def test_sniffed_port_gets_a_per_service_route_configuration(client_config) -> None:
    config = client_config()
    sniffed = [r for r in config.routes if r.name == "ratings.default.svc.cluster.local:7000"]
    assert len(sniffed) == 1
    (only,) = sniffed[0].virtual_hosts
    assert only.name == "ratings.default.svc.cluster.local:7000" and list(only.domains) == ["*"]
    assert cluster(config, "outbound|7000||ratings.default.svc.cluster.local")
