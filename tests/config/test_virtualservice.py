"""VirtualService: Istio's webhook rules, each with an example it refuses."""

from __future__ import annotations

import pytest

CASES = [
    ("no-routes", """
     hosts:
     - reviews
     """, "spec", "a VirtualService needs at least one of http, tcp or tls"),
    ("delegate-with-gateways", """
     gateways:  # <-
     - bookinfo-gateway
     http:
     - route:
       - destination:
           host: reviews
     """, "spec.gateways", "a delegate VirtualService (one without hosts) must not set gateways"),
    ("delegate-with-tcp", """
     http:
     - route:
       - destination:
           host: reviews
     tcp:  # <-
     - route:
       - destination:
           host: mongo
     """, "spec.tcp", "a delegate VirtualService (one without hosts) must not set tcp"),
    ("delegate-delegates", """
     http:
     - delegate:  # <-
         name: other
     """, "spec.http[0].delegate", "a delegate VirtualService cannot delegate again"),
    ("invalid-host", """
     hosts:
     - -reviews-.example.com  # <-
     http:
     - route:
       - destination:
           host: reviews
     """, "spec.hosts[0]", "'-reviews-.example.com' is not a valid DNS name (label '-reviews-')"),
    ("star-host-on-mesh", """
     hosts:
     - "*"  # <-
     http:
     - route:
       - destination:
           host: reviews
     """, "spec.hosts[0]",
     "'*' is not allowed as a host of a VirtualService bound to the mesh; name the hosts"),
    ("duplicate-hosts", """
     hosts:
     - a.example.com
     - "*.example.com"  # <-
     http:
     - route:
       - destination:
           host: reviews
     """, "spec.hosts[1]", "duplicate host '*.example.com': it overlaps 'a.example.com'"),
    ("sni-outside-hosts", """
     hosts:
     - "*.bookinfo.com"
     gateways:
     - mygateway
     tls:
     - match:
       - sniHosts:
         - login.example.com  # <-
       route:
       - destination:
           host: login
     """, "spec.tls[0].match[0].sniHosts[0]",
     "SNI host 'login.example.com' is not covered by any host of the VirtualService"),
    ("jwt-claims-on-mesh", """
     hosts:
     - reviews
     http:
     - match:
       - headers:
           "@request.auth.claims.group":  # <-
             exact: admin
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].headers['@request.auth.claims.group']",
     "JWT claim routing only works on gateways; bind the VirtualService to one"),
    ("route-without-action", """
     hosts:
     - reviews
     http:
     - match:  # <-
       - uri:
           prefix: /
     """, "spec.http[0]", "the HTTP route needs one of route, redirect, directResponse or delegate"),
    ("route-and-redirect", """
     hosts:
     - reviews
     http:
     - redirect:
         uri: /v2
       route:  # <-
       - destination:
           host: reviews
     """, "spec.http[0].route", "route cannot be combined with redirect"),
    ("rewrite-and-redirect", """
     hosts:
     - reviews
     http:
     - redirect:
         uri: /v2
       rewrite:  # <-
         uri: /v3
     """, "spec.http[0].rewrite", "rewrite cannot be combined with redirect"),
    ("direct-response-and-redirect", """
     hosts:
     - reviews
     http:
     - redirect:
         uri: /v2
       directResponse:  # <-
         status: 200
     """, "spec.http[0].directResponse", "directResponse cannot be combined with redirect"),
    ("fault-and-direct-response", """
     hosts:
     - reviews
     http:
     - directResponse:
         status: 404
       fault:  # <-
         abort:
           httpStatus: 500
     """, "spec.http[0].fault", "fault cannot be combined with directResponse"),
    ("root-route-with-route", """
     hosts:
     - reviews
     http:
     - delegate:
         name: reviews-delegate
       route:  # <-
       - destination:
           host: reviews
     """, "spec.http[0].route", "a route that delegates must not set route"),
    ("mirror-and-mirrors", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       mirror:
         host: reviews-shadow
       mirrors:  # <-
       - destination:
           host: reviews-shadow
     """, "spec.http[0].mirrors", "only one of mirror, mirrors may be set"),
    ("authority-rewritten-twice", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       rewrite:
         authority: a.example.com
       headers:
         request:  # <-
           set:
             host: b.example.com
     """, "spec.http[0].headers.request",
     "the authority is rewritten more than once ('a.example.com', 'b.example.com')"),
    ("empty-redirect", """
     hosts:
     - reviews
     http:
     - redirect:  # <-
         redirectCode: 302
     """, "spec.http[0].redirect",
     "redirect must set at least one of uri, prefixRewrite, authority, scheme, port or derivePort"),
    ("redirect-code", """
     hosts:
     - reviews
     http:
     - redirect:
         uri: /v2
         redirectCode: 200  # <-
     """, "spec.http[0].redirect.redirectCode", "redirect code 200 is not a 3xx code"),
    ("redirect-scheme", """
     hosts:
     - reviews
     http:
     - redirect:
         scheme: ftp  # <-
     """, "spec.http[0].redirect.scheme", "invalid redirect scheme 'ftp': use 'http' or 'https'"),
    ("redirect-port-and-derive", """
     hosts:
     - reviews
     http:
     - redirect:
         port: 8080
         derivePort: FROM_REQUEST_PORT  # <-
     """, "spec.http[0].redirect.derivePort", "only one of port, derivePort may be set"),
    ("redirect-uri-and-prefix-rewrite", """
     hosts:
     - reviews
     http:
     - redirect:
         uri: /a
         prefixRewrite: /b  # <-
     """, "spec.http[0].redirect.prefixRewrite", "only one of uri, prefixRewrite may be set"),
    ("prefix-rewrite-needs-prefix-match", """
     hosts:
     - reviews
     http:
     - match:
       - uri:  # <-
           exact: /old
       redirect:
         prefixRewrite: /new
     """, "spec.http[0].match[0].uri", "redirect.prefixRewrite needs uri prefix matches"),
    ("direct-response-status", """
     hosts:
     - reviews
     http:
     - directResponse:
         status: 700  # <-
     """, "spec.http[0].directResponse.status", "HTTP status 700 is not between 200 and 599"),
    ("direct-response-needs-status", """
     hosts:
     - reviews
     http:
     - directResponse:  # <-
         body:
           string: hi
     """, "spec.http[0].directResponse.status", "required field is missing"),
    ("direct-response-bytes", """
     hosts:
     - reviews
     http:
     - directResponse:
         status: 200
         body:
           bytes: "not base64!"  # <-
     """, "spec.http[0].directResponse.body.bytes", "body bytes must be base64"),
    ("direct-response-string-and-bytes", """
     hosts:
     - reviews
     http:
     - directResponse:
         status: 200
         body:
           string: a
           bytes: YQ==  # <-
     """, "spec.http[0].directResponse.body.bytes", "only one of string, bytes may be set"),
    ("empty-rewrite", """
     hosts:
     - reviews
     http:
     - rewrite: {}  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].rewrite", "rewrite must set uri, uriRegexRewrite or authority"),
    ("rewrite-uri-and-regex", """
     hosts:
     - reviews
     http:
     - rewrite:
         uri: /a
         uriRegexRewrite:  # <-
           match: ^/b
           rewrite: /c
       route:
       - destination:
           host: reviews
     """, "spec.http[0].rewrite.uriRegexRewrite", "only one of uri, uriRegexRewrite may be set"),
    ("regex-rewrite-incomplete", """
     hosts:
     - reviews
     http:
     - rewrite:
         uriRegexRewrite:  # <-
           match: ^/b
       route:
       - destination:
           host: reviews
     """, "spec.http[0].rewrite.uriRegexRewrite", "uriRegexRewrite needs both match and rewrite"),
    ("regex-rewrite-bad-regex", """
     hosts:
     - reviews
     http:
     - rewrite:
         uriRegexRewrite:
           match: "^/(b"  # <-
           rewrite: /c
       route:
       - destination:
           host: reviews
     """, "spec.http[0].rewrite.uriRegexRewrite.match",
     "invalid regex '^/(b': missing ): ^/(b"),
    ("negative-attempts", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       retries:
         attempts: -1  # <-
     """, "spec.http[0].retries.attempts", "must be >= 0, got -1"),
    ("zero-attempts-with-settings", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       retries:
         attempts: 0  # <-
         perTryTimeout: 2s
     """, "spec.http[0].retries.attempts",
     "attempts is 0, which turns retries off, yet other retry settings are set"),
    ("retry-on", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       retries:
         attempts: 2
         retryOn: 5xx,sometimes  # <-
     """, "spec.http[0].retries.retryOn", "invalid retryOn condition 'sometimes'"),
    ("retry-timeout-too-short", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       retries:
         attempts: 2
         perTryTimeout: 500us  # <-
     """, "spec.http[0].retries.perTryTimeout", "duration must be at least 1ms, got '500us'"),
    ("timeout-sub-millisecond", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       timeout: 1.5ms  # <-
     """, "spec.http[0].timeout", "duration '1.5ms' is finer than a millisecond; use whole milliseconds"),
    ("timeout-zero", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       timeout: 0s  # <-
     """, "spec.http[0].timeout", "duration must be at least 1ms, got '0s'"),
    ("empty-fault", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       fault: {}  # <-
     """, "spec.http[0].fault", "fault must set delay, abort or both"),
    ("fault-percentage-high", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       fault:
         abort:
           httpStatus: 503
           percentage:
             value: 150  # <-
     """, "spec.http[0].fault.abort.percentage.value", "percentage 150 must be 0 or between 0.0001 and 100"),
    ("fault-percentage-tiny", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       fault:
         delay:
           fixedDelay: 1s
           percentage:
             value: 0.00001  # <-
     """, "spec.http[0].fault.delay.percentage.value", "percentage 1e-05 must be 0 or between 0.0001 and 100"),
    ("abort-status", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       fault:
         abort:
           httpStatus: 600  # <-
     """, "spec.http[0].fault.abort.httpStatus", "HTTP status 600 is not between 200 and 599"),
    ("abort-grpc-status", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       fault:
         abort:
           grpcStatus: BROKEN  # <-
     """, "spec.http[0].fault.abort.grpcStatus", "unknown gRPC status 'BROKEN'; use a code name such as 'UNAVAILABLE'"),
    ("abort-http2", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       fault:
         abort:
           http2Error: PROTOCOL_ERROR  # <-
     """, "spec.http[0].fault.abort.http2Error", "http2Error aborts are not supported"),
    ("exponential-delay", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       fault:
         delay:
           exponentialDelay: 1s  # <-
     """, "spec.http[0].fault.delay.exponentialDelay", "exponentialDelay is not supported; use fixedDelay"),
    ("mirror-percentage", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       mirror:
         host: shadow
       mirrorPercentage:
         value: 100.5  # <-
     """, "spec.http[0].mirrorPercentage.value", "mirror percentage 100.5 must be between 0 and 100"),
    ("mirror-percent-deprecated", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       mirror:
         host: shadow
       mirrorPercent: 101  # <-
     """, "spec.http[0].mirrorPercent", "must be <= 100, got 101"),
    ("mirrors-need-destination", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       mirrors:
       - percentage:  # <-
           value: 5
     """, "spec.http[0].mirrors[0].destination", "required field is missing"),
    ("cors-method", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       corsPolicy:
         allowMethods:
         - FETCH  # <-
     """, "spec.http[0].corsPolicy.allowMethods[0]", "'FETCH' is not a supported HTTP method"),
    ("cors-header", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       corsPolicy:
         exposeHeaders:
         - x foo  # <-
     """, "spec.http[0].corsPolicy.exposeHeaders[0]",
     "invalid header name 'x foo': use letters, digits, '-' and '_'"),
    ("cors-max-age", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       corsPolicy:
         maxAge: 1500ms  # <-
     """, "spec.http[0].corsPolicy.maxAge", "maxAge must be a whole number of seconds"),
    ("cors-origin-empty", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       corsPolicy:
         allowOrigins:
         - {}  # <-
     """, "spec.http[0].corsPolicy.allowOrigins[0]", "exactly one of exact, prefix, regex must be set"),
    ("header-match-name", """
     hosts:
     - reviews
     http:
     - match:
       - headers:
           "user id":  # <-
             exact: jason
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].headers['user id']",
     "invalid header name 'user id': use letters, digits, '-' and '_'"),
    ("empty-prefix-on-method", """
     hosts:
     - reviews
     http:
     - match:
       - method:
           prefix: ""  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].method.prefix", "prefix must not be empty"),
    ("empty-regex", """
     hosts:
     - reviews
     http:
     - match:
       - uri:
           regex: ""  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].uri.regex", "regex must not be empty"),
    ("bad-regex", """
     hosts:
     - reviews
     http:
     - match:
       - headers:
           x-version:
             regex: "v(1|2"  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].headers.x-version.regex",
     "invalid regex 'v(1|2': missing ): v(1|2"),
    ("lookahead-regex", """
     hosts:
     - reviews
     http:
     - match:
       - uri:
           regex: "^/(?!admin)"  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].uri.regex",
     "invalid regex '^/(?!admin)': invalid perl operator: (?!"),
    ("long-regex", """
     hosts:
     - reviews
     http:
     - match:
       - uri:
           regex: "%s"  # <-
       route:
       - destination:
           host: reviews
     """ % ("a" * 1025), "spec.http[0].match[0].uri.regex", "regex is longer than 1024 characters"),
    ("two-match-types", """
     hosts:
     - reviews
     http:
     - match:
       - uri:
           exact: /a
           prefix: /b  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].uri.prefix", "only one of exact, prefix, regex may be set"),
    ("source-namespace", """
     hosts:
     - reviews
     http:
     - match:
       - sourceNamespace: Prod  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].sourceNamespace", "invalid namespace 'Prod': must be a lowercase DNS label"),
    ("match-port", """
     hosts:
     - reviews
     http:
     - match:
       - port: 70000  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].port", "must be <= 65535, got 70000"),
    ("match-source-labels", """
     hosts:
     - reviews
     http:
     - match:
       - sourceLabels:
           app: "no spaces"  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].sourceLabels.app", "invalid label value 'no spaces'"),
    ("pseudo-header-set", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       headers:
         request:
           set:
             ":path": /x  # <-
     """, "spec.http[0].headers.request.set[':path']",
     "header ':path' cannot be set: names starting with ':' are reserved"),
    ("host-header-on-response", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       headers:
         response:
           set:
             Host: a.example.com  # <-
     """, "spec.http[0].headers.response.set.Host", "header 'Host' cannot be changed here"),
    ("remove-empty-header", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       headers:
         request:
           remove:
           - ""  # <-
     """, "spec.http[0].headers.request.remove[0]", "header name must not be empty"),
    ("header-value-control", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
       headers:
         response:
           add:
             x-note: "a\\u0001b"  # <-
     """, "spec.http[0].headers.response.add.x-note", "header value 'a\\x01b' contains control characters"),
    ("header-value-percent", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
           subset: v1
         headers:
           request:
             add:
               x-ratio: "50%"  # <-
     """, "spec.http[0].route[0].headers.request.add.x-ratio",
     "header value '50%' has an unterminated %-variable; write %% for a literal %"),
    ("destination-star", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: "*"  # <-
     """, "spec.http[0].route[0].destination.host", "'*' is not a valid destination host"),
    ("destination-ip", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: 10.0.0.1  # <-
     """, "spec.http[0].route[0].destination.host",
     "invalid host '10.0.0.1': the top-level domain must not be all digits"),
    ("destination-needs-host", """
     hosts:
     - reviews
     http:
     - route:
       - destination:  # <-
           subset: v1
     """, "spec.http[0].route[0].destination.host", "required field is missing"),
    ("subset-name", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
           subset: v_1  # <-
     """, "spec.http[0].route[0].destination.subset", "invalid subset name 'v_1': must be a DNS label"),
    ("destination-port", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
           port:
             number: 0  # <-
     """, "spec.http[0].route[0].destination.port.number", "must be >= 1, got 0"),
    ("negative-weight", """
     hosts:
     - reviews
     http:
     - route:
       - destination:
           host: reviews
         weight: -10  # <-
     """, "spec.http[0].route[0].weight", "must be >= 0, got -10"),
    ("zero-total-weight", """
     hosts:
     - reviews
     http:
     - route:  # <-
       - destination:
           host: reviews
           subset: v1
         weight: 0
       - destination:
           host: reviews
           subset: v2
     """, "spec.http[0].route", "the weights of the destinations add up to 0; give at least one a positive weight"),
    ("gateway-reference-halves", """
     hosts:
     - reviews
     gateways:
     - istio-system/  # <-
     http:
     - route:
       - destination:
           host: reviews
     """, "spec.gateways[0]", "invalid gateway 'istio-system/': both namespace and name are needed in namespace/name"),
    ("gateway-reference-namespace", """
     hosts:
     - reviews
     gateways:
     - istio_system/gw  # <-
     http:
     - route:
       - destination:
           host: reviews
     """, "spec.gateways[0]", "invalid namespace 'istio_system' in gateway 'istio_system/gw'"),
    ("gateway-reference-name", """
     hosts:
     - reviews
     gateways:
     - istio-system/my.gateway  # <-
     http:
     - route:
       - destination:
           host: reviews
     """, "spec.gateways[0]", "invalid gateway name 'my.gateway' in 'istio-system/my.gateway'"),
    ("gateway-legacy-name", """
     hosts:
     - reviews
     gateways:
     - "*.gateway"  # <-
     http:
     - route:
       - destination:
           host: reviews
     """, "spec.gateways[0]", "invalid gateway name '*.gateway': wildcard host '*.gateway' is not allowed here"),
    ("match-gateway", """
     hosts:
     - reviews
     http:
     - match:
       - gateways:
         - bad_gw  # <-
       route:
       - destination:
           host: reviews
     """, "spec.http[0].match[0].gateways[0]",
     "invalid gateway name 'bad_gw': 'bad_gw' is not a valid DNS name (label 'bad_gw')"),
    ("tls-route-needs-match", """
     hosts:
     - reviews
     tls:
     - route:  # <-
       - destination:
           host: reviews
     """, "spec.tls[0].match", "required field is missing"),
    ("tls-match-needs-sni", """
     hosts:
     - reviews
     tls:
     - match:
       - port: 443  # <-
       route:
       - destination:
           host: reviews
     """, "spec.tls[0].match[0].sniHosts", "required field is missing"),
    ("tcp-route-needs-destinations", """
     hosts:
     - mongo
     tcp:
     - match:  # <-
       - port: 27017
     """, "spec.tcp[0].route", "required field is missing"),
    ("destination-subnet", """
     hosts:
     - mongo
     tcp:
     - match:
       - destinationSubnets:
         - 10.0.0.0/33  # <-
       route:
       - destination:
           host: mongo
     """, "spec.tcp[0].match[0].destinationSubnets[0]", "invalid CIDR block '10.0.0.0/33'"),
    ("unknown-field", """
     hosts:
     - reviews
     http:
     - rout:  # <-
       - destination:
           host: reviews
     """, "spec.http[0].rout", "unknown field 'rout' (did you mean 'route'?)"),
    ("export-to", """
     hosts:
     - reviews
     exportTo:  # <-
     - "*"
     - "."
     http:
     - route:
       - destination:
           host: reviews
     """, "spec.exportTo", "'*' (export to all) cannot be combined with other values"),
]


@pytest.mark.parametrize(("spec", "field", "message"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_rule(assert_rejected, spec: str, field: str, message: str) -> None:
    assert_rejected("VirtualService", spec, field, message)


@pytest.mark.parametrize(
    "spec",
    [
        """
        hosts:
        - "*"
        gateways:
        - public-gateway
        http:
        - route:
          - destination:
              host: reviews
        """,
        """
        hosts:
        - 10.1.2.3
        http:
        - route:
          - destination:
              host: reviews
        """,
        """
        hosts:
        - reviews
        http:
        - match:
          - withoutHeaders:
              x-debug:
                regex: "*"
          - uri:
              prefix: ""
          route:
          - destination:
              host: reviews
        """,
        """
        hosts:
        - reviews
        http:
        - delegate:
            name: reviews-routes
        """,
        """
        hosts:
        - reviews
        http:
        - route:
          - destination:
              host: reviews
          retries:
            attempts: 0
        """,
    ],
    ids=["star-host-on-gateway", "ip-host", "presence-and-empty-prefix", "root-delegate", "retries-off"],
)
def test_accepted(assert_accepted, spec: str) -> None:
    assert_accepted("VirtualService", spec)


def test_large_direct_response_body(load_text) -> None:
    body = "x" * (1024 * 1024 + 1)
    text = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: big\nspec:\n"
        "  hosts:\n  - reviews\n  http:\n  - directResponse:\n      status: 200\n      body:\n"
        f"        string: {body}\n"
    )
    file, result = load_text(text)
    assert [str(problem) for problem in result.problems] == [
        f"{file}:11: VirtualService default/big: spec.http[0].directResponse.body: "
        "the response body is larger than 1 MiB"
    ]
