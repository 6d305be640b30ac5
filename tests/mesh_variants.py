"""Resources of every kind meshctl reads, written to apply to the test mesh (testsupport.BASE):
the reviews and ratings services and their workloads. Between them they hold every integer,
number and duration field of every schema at a moderate value, so tests can push any one of
them to an extreme (tests/config/test_numeric_bounds.py) and the fuzzers can mutate them into
input the translator really uses (tests/strategies.py)."""

from __future__ import annotations

import copy
from typing import Any

from meshctl.config.kinds import KINDS, KindInfo


def _pool() -> dict[str, Any]:
    return {
        "tcp": {"maxConnections": 10, "connectTimeout": "1s", "maxConnectionDuration": "1h", "idleTimeout": "1h",
                "tcpKeepalive": {"probes": 3, "time": "60s", "interval": "10s"}},
        "http": {"http1MaxPendingRequests": 10, "http2MaxRequests": 10, "maxRequestsPerConnection": 10, "maxRetries": 3,
                 "idleTimeout": "30s", "maxConcurrentStreams": 10,
                 "http2KeepAlive": {"interval": "10s", "timeout": "5s"}},
    }


def _outlier() -> dict[str, Any]:
    return {"splitExternalLocalOriginErrors": True, "consecutiveLocalOriginFailures": 3, "consecutiveGatewayErrors": 3,
            "consecutive5xxErrors": 3, "consecutiveErrors": 3, "interval": "10s", "baseEjectionTime": "30s",
            "maxEjectionPercent": 50, "minHealthPercent": 10}


_BALANCERS: list[dict[str, Any]] = [
    {"consistentHash": {"httpCookie": {"name": "c", "ttl": "10s"}, "ringHash": {"minimumRingSize": 1024}},
     "localityLbSetting": {"distribute": [{"from": "r1/*", "to": {"r1/z1/*": 100}}]}},
    {"consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 65537}}, "warmupDurationSecs": "10s"},
    {"consistentHash": {"httpHeaderName": "x-user", "minimumRingSize": 1024}},
    {"simple": "ROUND_ROBIN", "warmup": {"duration": "10s", "minimumPercent": 10, "aggression": 1.5}},
]


def _policy(balancer: dict[str, Any], port_level: bool = True) -> dict[str, Any]:
    policy: dict[str, Any] = {"loadBalancer": copy.deepcopy(balancer), "connectionPool": _pool(),
                              "outlierDetection": _outlier()}
    if port_level:
        policy["portLevelSettings"] = [{"port": {"number": 9090}, **_policy(balancer, port_level=False)}]
        policy["tunnel"] = {"targetHost": "egress.example.com", "targetPort": 443}
        policy["retryBudget"] = {"percent": 20, "minRetryConcurrency": 3, "budgetInterval": "10s"}
    return policy


_ROUTE = [{"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}}, "weight": 100}]
_REVIEWS = {"group": "", "kind": "Service", "name": "reviews", "port": 9080}
_RATINGS = {"name": "ratings", "port": 9080}
_CONTAINER = {"name": "c", "image": "c", "ports": [{"containerPort": 9080, "hostPort": 0}]}

# Port-level policies name ratings' port 9090, so that its port 9080 shows the policy around them.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "VirtualService": [
        {"hosts": ["reviews"], "http": [
            {"match": [{"port": 9080}], "route": _ROUTE, "timeout": "10s",
             "retries": {"attempts": 3, "perTryTimeout": "2s", "backoff": "100ms", "retryOn": "5xx"},
             "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 10}},
                       "abort": {"httpStatus": 503, "percentage": {"value": 10}}},
             "mirror": {"host": "ratings", "port": {"number": 9080}}, "mirrorPercentage": {"value": 50},
             "corsPolicy": {"allowOrigins": [{"exact": "https://a.example"}], "maxAge": "24h"}},
            {"route": _ROUTE, "mirrors": [{"destination": {"host": "ratings", "port": {"number": 9080}},
                                           "percentage": {"value": 10}}],
             "mirrorPercent": 50, "mirror_percent": 50, "fault": {"delay": {"fixedDelay": "1s", "percent": 10}}},
        ]},
        {"hosts": ["reviews"], "http": [{"match": [{"port": 9080}],
                                         "redirect": {"uri": "/v2", "port": 8080, "redirectCode": 301}},
                                        {"directResponse": {"status": 200, "body": {"string": "ok"}}}]},
        {"hosts": ["ratings"],
         "tls": [{"match": [{"sniHosts": ["ratings"], "port": 9090}],
                  "route": [{"destination": {"host": "ratings", "port": {"number": 9090}}, "weight": 100}]}],
         "tcp": [{"match": [{"port": 7000}],
                  "route": [{"destination": {"host": "ratings", "port": {"number": 7000}}, "weight": 100}]}]},
    ],
    "DestinationRule": [
        {"host": "ratings", "trafficPolicy": _policy(balancer),
         "subsets": [{"name": "v1", "labels": {"app": "ratings"}, "trafficPolicy": _policy(balancer)}]}
        for balancer in _BALANCERS
    ],
    "Gateway": [{"selector": {"istio": "ingressgateway"},
                 "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 0},
                              "hosts": ["*"]}]}],
    "ServiceEntry": [{"hosts": ["api.example.com"], "location": "MESH_EXTERNAL", "resolution": "STATIC",
                      "ports": [{"number": 443, "name": "https", "protocol": "TLS", "targetPort": 8443}],
                      "endpoints": [{"address": "10.1.2.3", "ports": {"https": 8443}, "weight": 1}]}],
    "Sidecar": [{"workloadSelector": {"labels": {"app": "reviews"}},
                 "ingress": [{"port": {"number": 9080, "protocol": "HTTP", "name": "http", "targetPort": 0},
                              "defaultEndpoint": "127.0.0.1:9080", "connectionPool": _pool()}],
                 "egress": [{"port": {"number": 9080, "protocol": "HTTP", "name": "http", "targetPort": 0},
                             "hosts": ["./*"]}],
                 "outboundTrafficPolicy": {"mode": "ALLOW_ANY", "egressProxy": {"host": "egress.example.com",
                                                                                 "port": {"number": 443}}},
                 "inboundConnectionPool": _pool()}],
    "WorkloadEntry": [{"address": "10.1.2.4", "labels": {"app": "reviews", "version": "v1"}, "ports": {"http": 9080},
                       "weight": 1}],
    "RequestAuthentication": [{"jwtRules": [{"issuer": "https://issuer.example", "jwksUri": "https://issuer.example/jwks",
                                             "timeout": "5s"}]}],
    "Service": [{"type": "NodePort", "selector": {"app": "reviews"}, "healthCheckNodePort": 30081,
                 "ports": [{"name": "http", "port": 9080, "targetPort": 9080, "nodePort": 30080}]}],
    "Endpoints": [{"subsets": [{"addresses": [{"ip": "10.244.0.9"}], "ports": [{"name": "http", "port": 9080}]}]}],
    "EndpointSlice": [{"addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.10"]}],
                       "ports": [{"name": "http", "port": 9080}]}],
    "Pod": [{"containers": [_CONTAINER], "initContainers": [_CONTAINER]}],
    "Deployment": [{"replicas": 1, "minReadySeconds": 0, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                    "selector": {"matchLabels": {"app": "reviews", "version": "v9"}},
                    "template": {"metadata": {"labels": {"app": "reviews", "version": "v9"}},
                                 "spec": {"containers": [_CONTAINER], "initContainers": [_CONTAINER]}}}],
    # The Gateway API: a Gateway Istio deploys, and routes for the mesh (GAMMA: their parent
    # is reviews), which the sidecars of the test mesh translate.
    "KubernetesGateway": [{"gatewayClassName": "istio",
                           "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}],
    "HTTPRoute": [{"parentRefs": [_REVIEWS], "rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/a"}}],
         "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": _RATINGS, "percent": 50}},
                     {"type": "CORS", "cors": {"allowOrigins": ["https://a.example"], "maxAge": 600}}],
         "backendRefs": [{**_RATINGS, "weight": 1}, {**_RATINGS, "weight": 2}],
         "timeouts": {"request": "10s", "backendRequest": "2s"},
         "retry": {"codes": [503], "attempts": 3, "backoff": "100ms"}},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/b"}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {"port": 8080, "statusCode": 301}}]},
        {"filters": [{"type": "RequestMirror",
                      "requestMirror": {"backendRef": _RATINGS, "fraction": {"numerator": 1, "denominator": 4}}}],
         "backendRefs": [_RATINGS]},
    ]}],
    "GRPCRoute": [{"parentRefs": [_REVIEWS], "rules": [
        {"filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": _RATINGS, "percent": 50}}],
         "backendRefs": [{**_RATINGS, "weight": 1}]},
        {"filters": [{"type": "RequestMirror",
                      "requestMirror": {"backendRef": _RATINGS, "fraction": {"numerator": 1, "denominator": 4}}}],
         "backendRefs": [_RATINGS]},
    ]}],
    "TCPRoute": [{"parentRefs": [_REVIEWS], "rules": [{"backendRefs": [{**_RATINGS, "weight": 1}]}]}],
    "TLSRoute": [{"parentRefs": [_REVIEWS], "rules": [{"backendRefs": [{**_RATINGS, "weight": 1}]}]}],
}
NAMES = {"Endpoints": "reviews", "EndpointSlice": "reviews-abc", "Service": "reviews", "Pod": "reviews-v9"}
LABELS = {"EndpointSlice": {"kubernetes.io/service-name": "reviews"}, "Pod": {"app": "reviews", "version": "v9"}}


def document(info: KindInfo, body: dict[str, Any]) -> dict[str, Any]:
    """A whole object of `info`'s kind around `body` (its spec, or its fields for kinds without one)."""
    metadata: dict[str, Any] = {"name": NAMES.get(info.kind, "variant")}
    if info.kind in LABELS:
        metadata["labels"] = LABELS[info.kind]
    whole = {"apiVersion": f"{info.group}/{info.versions[0]}" if info.group else info.versions[0],
             "kind": info.kind, "metadata": metadata}
    if info.body:
        whole[info.body] = body
    else:
        whole.update(body)
    return whole


def documents() -> list[dict[str, Any]]:
    """Every variant as a whole object (apiVersion, kind, metadata)."""
    infos = {info.resource_kind: info for info in KINDS.values()}
    return [document(infos[kind], copy.deepcopy(body)) for kind, bodies in VARIANTS.items() for body in bodies]
