"""PeerAuthentication, AuthorizationPolicy and RequestAuthentication: Istio's webhook rules."""

from __future__ import annotations

import pytest

PEER_AUTHENTICATION_CASES = [
    ("port-level-without-selector", """
     mtls:
       mode: STRICT
     portLevelMtls:  # <-
       8080:
         mode: DISABLE
     """, "spec.portLevelMtls",
     "portLevelMtls needs a selector with matchLabels: mesh- and namespace-wide policies cannot set it"),
    ("port-level-empty", """
     selector:
       matchLabels:
         app: finance
     portLevelMtls: {}  # <-
     """, "spec.portLevelMtls", "portLevelMtls, when set, needs at least one port"),
    ("port-level-key", """
     selector:
       matchLabels:
         app: finance
     portLevelMtls:
       http:  # <-
         mode: DISABLE
     """, "spec.portLevelMtls.http", "port 'http' must be a number between 1 and 65535"),
    ("port-level-zero", """
     selector:
       matchLabels:
         app: finance
     portLevelMtls:
       0:  # <-
         mode: DISABLE
     """, "spec.portLevelMtls['0']", "port '0' must be a number between 1 and 65535"),
    ("mode", """
     mtls:
       mode: REQUIRED  # <-
     """, "spec.mtls.mode", "invalid value 'REQUIRED': must be one of UNSET, DISABLE, PERMISSIVE, STRICT"),
    ("selector-label", """
     selector:
       matchLabels:
         app: "*"  # <-
     mtls:
       mode: STRICT
     """, "spec.selector.matchLabels.app", "invalid label value '*'"),
]

AUTHORIZATION_POLICY_CASES = [
    ("principal-inner-wildcard", """
     rules:
     - from:
       - source:
           principals: ["cluster.local/ns/*/sa/bookinfo"]  # <-
     """, "spec.rules[0].from[0].source.principals[0]",
     "'cluster.local/ns/*/sa/bookinfo': a '*' may only stand at the start or the end of a value, once"),
    ("namespace-two-wildcards", """
     rules:
     - from:
       - source:
           notNamespaces: ["*-test-*"]  # <-
     """, "spec.rules[0].from[0].source.notNamespaces[0]",
     "'*-test-*': a '*' may only stand at the start or the end of a value, once"),
    ("service-account-wildcard", """
     rules:
     - from:
       - source:
           serviceAccounts: ["default/*"]  # <-
     """, "spec.rules[0].from[0].source.serviceAccounts[0]", "'default/*': service accounts do not take wildcards"),
    ("trust-domain-slash", """
     rules:
     - from:
       - source:
           trustDomains: ["cluster.local/ns"]  # <-
     """, "spec.rules[0].from[0].source.trustDomains[0]", "trust domain 'cluster.local/ns' must not contain '/'"),
    ("condition-principal-wildcard", """
     rules:
     - when:
       - key: source.principal
         values: ["a*b"]  # <-
     """, "spec.rules[0].when[0].values[0]", "'a*b': a '*' may only stand at the start or the end of a value, once"),
    ("selector-and-target", """
     selector:
       matchLabels:
         app: httpbin
     targetRef:  # <-
       kind: Gateway
       group: gateway.networking.k8s.io
       name: waypoint
     """, "spec.targetRef", "only one of selector, targetRef, targetRefs may be set"),
    ("target-namespace", """
     targetRef:
       kind: Service
       name: reviews
       namespace: other  # <-
     """, "spec.targetRef.namespace", "namespace must not be set: cross-namespace references are not supported"),
    ("target-kind", """
     targetRefs:
     - kind: Deployment  # <-
       group: apps
       name: reviews
     """, "spec.targetRefs[0].kind",
     "a policy can target a Service, ServiceEntry or gateway.networking.k8s.io Gateway, not apps/Deployment"),
    ("target-name-required", """
     targetRefs:
     - kind: Service  # <-
     """, "spec.targetRefs[0].name", "required field is missing"),
    ("too-many-targets", """
     targetRefs:  # <-
    """ + "".join(f"\n     - kind: Service\n       name: s{index}" for index in range(17)) + "\n",
     "spec.targetRefs", "at most 16 targetRefs may be set"),
    ("custom-without-rules", """
     action: CUSTOM
     provider:
       name: ext-authz
     """, "spec.rules",
     "action CUSTOM without rules never applies; add an empty rule {} to apply it to every request"),
    ("custom-without-provider", """
     action: CUSTOM
     rules:
     - {}
     """, "spec.provider.name", "action CUSTOM needs provider.name"),
    ("custom-with-principals", """
     action: CUSTOM
     provider:
       name: ext-authz
     rules:
     - from:
       - source:
           principals: ["cluster.local/ns/default/sa/sleep"]  # <-
     """, "spec.rules[0].from[0].source.principals", "principals is not supported with action CUSTOM"),
    ("custom-with-claims", """
     action: CUSTOM
     provider:
       name: ext-authz
     rules:
     - when:
       - key: request.auth.claims[iss]  # <-
         values: ["issuer"]
     """, "spec.rules[0].when[0].key", "condition 'request.auth.claims[iss]' is not supported with action CUSTOM"),
    ("provider-with-allow", """
     action: ALLOW
     provider:  # <-
       name: ext-authz
     rules:
     - {}
     """, "spec.provider", "provider can only be set with action CUSTOM, not ALLOW"),
    ("deny-without-rules", """
     action: DENY
     """, "spec.rules",
     "action DENY without rules never applies; add an empty rule {} to deny every request"),
    ("empty-from", """
     rules:
     - from: []  # <-
     """, "spec.rules[0].from", "from must not be an empty list; leave it out to match everything"),
    ("from-needs-source", """
     rules:
     - from:
       - {}  # <-
     """, "spec.rules[0].from[0].source", "required field is missing"),
    ("empty-source", """
     rules:
     - from:
       - source: {}  # <-
     """, "spec.rules[0].from[0].source", "source must set at least one field"),
    ("ip-block", """
     rules:
     - from:
       - source:
           ipBlocks: ["10.0.0.0/40"]  # <-
     """, "spec.rules[0].from[0].source.ipBlocks[0]", "invalid CIDR block '10.0.0.0/40'"),
    ("empty-principal", """
     rules:
     - from:
       - source:
           principals: [""]  # <-
     """, "spec.rules[0].from[0].source.principals[0]", "principals must not contain empty values"),
    ("service-accounts-and-namespaces", """
     rules:
     - from:
       - source:  # <-
           serviceAccounts: ["sleep"]
           namespaces: ["default"]
     """, "spec.rules[0].from[0].source", "serviceAccounts cannot be combined with principals or namespaces"),
    ("service-account-length", """
     rules:
     - from:
       - source:
           serviceAccounts:
           - %s  # <-
     """ % ("a" * 321), "spec.rules[0].from[0].source.serviceAccounts[0]", "must be at most 320 characters long"),
    ("empty-operation", """
     rules:
     - to:
       - operation: {}  # <-
     """, "spec.rules[0].to[0].operation", "operation must set at least one field"),
    ("operation-port", """
     rules:
     - to:
       - operation:
           ports: ["http"]  # <-
     """, "spec.rules[0].to[0].operation.ports[0]", "invalid port 'http': must be a number between 1 and 65535"),
    ("path-template", """
     rules:
     - to:
       - operation:
           paths: ["/api/{**}/items/{*}"]  # <-
     """, "spec.rules[0].to[0].operation.paths[0]",
     "path template '/api/{**}/items/{*}': '{**}' must be the last operator"),
    ("path-template-mixed", """
     rules:
     - to:
       - operation:
           paths: ["/api/v{*}"]  # <-
     """, "spec.rules[0].to[0].operation.paths[0]",
     "path template '/api/v{*}': segment 'v{*}' mixes text and wildcards"),
    ("condition-key", """
     rules:
     - when:
       - key: source.color  # <-
         values: ["blue"]
     """, "spec.rules[0].when[0].key", "unknown attribute 'source.color'"),
    ("condition-header-key", """
     rules:
     - when:
       - key: request.headers[]  # <-
         values: ["x"]
     """, "spec.rules[0].when[0].key", "invalid attribute 'request.headers[]': write request.headers[NAME]"),
    ("condition-values", """
     rules:
     - when:
       - key: source.namespace  # <-
     """, "spec.rules[0].when[0]", "condition on 'source.namespace' needs values or notValues"),
    ("condition-ip", """
     rules:
     - when:
       - key: remote.ip
         notValues: ["10.0.0.256"]  # <-
     """, "spec.rules[0].when[0].notValues[0]", "invalid IP address '10.0.0.256'"),
    ("action", """
     action: REJECT  # <-
     """, "spec.action", "invalid value 'REJECT': must be one of ALLOW, DENY, AUDIT, CUSTOM"),
]

REQUEST_AUTHENTICATION_CASES = [
    ("issuer-required", """
     jwtRules:
     - jwksUri: https://example.com/jwks.json  # <-
     """, "spec.jwtRules[0].issuer", "required field is missing"),
    ("jwks-uri-scheme", """
     jwtRules:
     - issuer: example
       jwksUri: ftp://example.com/jwks.json  # <-
     """, "spec.jwtRules[0].jwksUri",
     "invalid JWKS URI 'ftp://example.com/jwks.json': use an http:// or https:// URL with a host"),
    ("jwks-and-uri", """
     jwtRules:
     - issuer: example
       jwksUri: https://example.com/jwks.json
       jwks: '{"keys": [{"kty": "EC"}]}'  # <-
     """, "spec.jwtRules[0].jwks", "only one of jwksUri, jwks_uri, jwks may be set"),
    ("jwks-json", """
     jwtRules:
     - issuer: example
       jwks: '{"keys": [{"n": "abc"}]}'  # <-
     """, "spec.jwtRules[0].jwks",
     "jwks is not a JSON Web Key Set (a JSON object with a 'keys' list of keys with 'kty')"),
    ("audience", """
     jwtRules:
     - issuer: example
       audiences:
       - ""  # <-
     """, "spec.jwtRules[0].audiences[0]", "must not be empty"),
    ("from-header-name", """
     jwtRules:
     - issuer: example
       fromHeaders:
       - prefix: "Bearer "  # <-
     """, "spec.jwtRules[0].fromHeaders[0].name", "required field is missing"),
    ("claim-header", """
     jwtRules:
     - issuer: example
       outputClaimToHeaders:
       - header: "x sub"  # <-
         claim: sub
     """, "spec.jwtRules[0].outputClaimToHeaders[0].header",
     "invalid header name 'x sub': use letters, digits, '-' and '_'"),
    ("claim-required", """
     jwtRules:
     - issuer: example
       outputClaimToHeaders:
       - header: x-sub  # <-
     """, "spec.jwtRules[0].outputClaimToHeaders[0].claim", "required field is missing"),
    ("timeout", """
     jwtRules:
     - issuer: example
       timeout: 0.1ms  # <-
     """, "spec.jwtRules[0].timeout", "duration must be at least 1ms, got '0.1ms'"),
    ("selector-and-targets", """
     selector:
       matchLabels:
         app: httpbin
     targetRefs:  # <-
     - kind: Gateway
       group: gateway.networking.k8s.io
       name: ingress
     """, "spec.targetRefs", "only one of selector, targetRef, targetRefs may be set"),
]


@pytest.mark.parametrize(("spec", "field", "message"), [case[1:] for case in PEER_AUTHENTICATION_CASES],
                         ids=[case[0] for case in PEER_AUTHENTICATION_CASES])
def test_peer_authentication_rule(assert_rejected, spec: str, field: str, message: str) -> None:
    assert_rejected("PeerAuthentication", spec, field, message)


@pytest.mark.parametrize(("spec", "field", "message"), [case[1:] for case in AUTHORIZATION_POLICY_CASES],
                         ids=[case[0] for case in AUTHORIZATION_POLICY_CASES])
def test_authorization_policy_rule(assert_rejected, spec: str, field: str, message: str) -> None:
    assert_rejected("AuthorizationPolicy", spec, field, message)


@pytest.mark.parametrize(("spec", "field", "message"), [case[1:] for case in REQUEST_AUTHENTICATION_CASES],
                         ids=[case[0] for case in REQUEST_AUTHENTICATION_CASES])
def test_request_authentication_rule(assert_rejected, spec: str, field: str, message: str) -> None:
    assert_rejected("RequestAuthentication", spec, field, message)
