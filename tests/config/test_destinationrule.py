"""DestinationRule: Istio's webhook rules, each with an example it refuses."""

from __future__ import annotations

import pytest

CASES = [
    ("host-required", """
     subsets:
     - name: v1
     """, "spec.host", "required field is missing"),
    ("host-invalid", """
     host: reviews..default  # <-
     """, "spec.host", "domain name 'reviews..default' has an empty label"),
    ("duplicate-subsets", """
     host: reviews
     subsets:
     - name: v1
       labels:
         version: v1
     - name: v1  # <-
       labels:
         version: v2
     """, "spec.subsets[1].name", "duplicate subset name 'v1'"),
    ("subset-name-required", """
     host: reviews
     subsets:
     - labels:  # <-
         version: v1
     """, "spec.subsets[0].name", "required field is missing"),
    ("subset-name-label", """
     host: reviews
     subsets:
     - name: version.1  # <-
     """, "spec.subsets[0].name", "invalid subset name 'version.1': must be a DNS label"),
    ("subset-labels", """
     host: reviews
     subsets:
     - name: v1
       labels:
         version: "v1/beta"  # <-
     """, "spec.subsets[0].labels.version", "invalid label value 'v1/beta'"),
    ("empty-traffic-policy", """
     host: reviews
     trafficPolicy: {}  # <-
     """, "spec.trafficPolicy", "trafficPolicy must set at least one field"),
    ("tunnel-and-proxy-protocol", """
     host: reviews
     trafficPolicy:
       tunnel:
         targetHost: proxy.example.com
         targetPort: 3128
       proxyProtocol:  # <-
         version: V1
     """, "spec.trafficPolicy.proxyProtocol", "tunnel and proxyProtocol cannot both be set"),
    ("port-policy-needs-port", """
     host: reviews
     trafficPolicy:
       portLevelSettings:
       - loadBalancer:  # <-
           simple: RANDOM
     """, "spec.trafficPolicy.portLevelSettings[0].port", "required field is missing"),
    ("port-policy-needs-settings", """
     host: reviews
     trafficPolicy:
       portLevelSettings:
       - port:  # <-
           number: 80
     """, "spec.trafficPolicy.portLevelSettings[0]",
     "port-level settings must set at least one of loadBalancer, connectionPool, outlierDetection, tls"),
    ("simple-and-hash", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         simple: RANDOM
         consistentHash:  # <-
           useSourceIp: true
     """, "spec.trafficPolicy.loadBalancer.consistentHash", "only one of simple, consistentHash may be set"),
    ("two-hash-keys", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         consistentHash:
           httpHeaderName: x-user
           httpQueryParameterName: user  # <-
     """, "spec.trafficPolicy.loadBalancer.consistentHash.httpQueryParameterName",
     "only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName may be set"),
    ("ring-hash-and-maglev", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         consistentHash:
           useSourceIp: true
           ringHash:
             minimumRingSize: 64
           maglev:  # <-
             tableSize: 65537
     """, "spec.trafficPolicy.loadBalancer.consistentHash.maglev", "only one of ringHash, maglev may be set"),
    ("minimum-ring-size-with-ring-hash", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         consistentHash:
           useSourceIp: true
           minimumRingSize: 100  # <-
           ringHash:
             minimumRingSize: 64
     """, "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
     "minimumRingSize cannot be combined with ringHash or maglev"),
    ("maglev-table-size-missing", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         consistentHash:
           useSourceIp: true
           maglev: {}  # <-
     """, "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize", "maglev needs tableSize"),
    ("maglev-table-size-prime", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         consistentHash:
           useSourceIp: true
           maglev:
             tableSize: 65536  # <-
     """, "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
     "maglev tableSize 65536 must be a prime number"),
    ("maglev-table-size-large", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         consistentHash:
           useSourceIp: true
           maglev:
             tableSize: 5000011  # <-
     """, "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
     "maglev tableSize must be less than 5000011"),
    ("cookie-needs-name", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         consistentHash:
           httpCookie:  # <-
             ttl: 10s
     """, "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name", "required field is missing"),
    ("distribute-and-failover", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:  # <-
           distribute:
           - from: us-west/*
             to:
               us-west/*: 100
           failover:
           - from: us-west
             to: us-east
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting", "distribute and failover cannot both be set"),
    ("failover-priority-topology", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:
           failover:
           - from: us-west
             to: us-east
           failoverPriority:
           - topology.kubernetes.io/region  # <-
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[0]",
     "failoverPriority cannot use the topology label 'topology.kubernetes.io/region' together with failover"),
    ("locality-weight-range", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:
           distribute:
           - from: us-west/*
             to:  # <-
               us-west/*: 0
               us-east/*: 100
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
     "locality weights must be between 1 and 100"),
    ("locality-weight-total", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:
           distribute:
           - from: us-west/*
             to:  # <-
               us-west/*: 60
               us-east/*: 30
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
     "locality weights add up to 90, not 100"),
    ("locality-wildcard-position", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:
           distribute:  # <-
           - from: us-*/zone1
             to:
               us-west/*: 100
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute",
     "locality 'us-*/zone1' may only end with a single '*'"),
    ("locality-overlap", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:
           distribute:  # <-
           - from: us-west
             to:
               us-west/*: 100
           - from: us-west/zone1
             to:
               us-west/*: 100
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute",
     "locality 'us-west/zone1' overlaps an earlier one"),
    ("locality-empty-part", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:
           distribute:
           - from: us-west
             to:  # <-
               us-west//sub: 100
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
     "locality 'us-west//sub' has an empty region, zone or subzone"),
    ("failover-same-region", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:
           failover:
           - from: us-west  # <-
             to: us-west
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
     "failover from and to must be different regions"),
    ("failover-zone", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:
           failover:
           - from: us-west/zone1  # <-
             to: us-east
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]", "failover takes regions, not zones"),
    ("failover-wildcard", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         localityLbSetting:
           failover:
           - from: us-*  # <-
             to: us-east
     """, "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
     "failover regions must not contain '*'"),
    ("warmup-needs-duration", """
     host: reviews
     trafficPolicy:
       loadBalancer:
         warmup:  # <-
           aggression: 2
     """, "spec.trafficPolicy.loadBalancer.warmup.duration", "required field is missing"),
    ("local-origin-needs-split", """
     host: reviews
     trafficPolicy:
       outlierDetection:
         consecutiveLocalOriginFailures: 3  # <-
     """, "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
     "consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true"),
    ("ejection-percent", """
     host: reviews
     trafficPolicy:
       outlierDetection:
         maxEjectionPercent: 120  # <-
     """, "spec.trafficPolicy.outlierDetection.maxEjectionPercent", "must be <= 100, got 120"),
    ("ejection-interval", """
     host: reviews
     trafficPolicy:
       outlierDetection:
         interval: 10  # <-
     """, "spec.trafficPolicy.outlierDetection.interval",
     "expected a duration such as '1s' or '100ms', got int"),
    ("empty-connection-pool", """
     host: reviews
     trafficPolicy:
       connectionPool: {}  # <-
     """, "spec.trafficPolicy.connectionPool", "connectionPool must set tcp, http or both"),
    ("negative-connections", """
     host: reviews
     trafficPolicy:
       connectionPool:
         tcp:
           maxConnections: -1  # <-
     """, "spec.trafficPolicy.connectionPool.tcp.maxConnections", "must be >= 0, got -1"),
    ("upgrade-and-client-protocol", """
     host: reviews
     trafficPolicy:
       connectionPool:
         http:
           h2UpgradePolicy: UPGRADE
           useClientProtocol: true  # <-
     """, "spec.trafficPolicy.connectionPool.http.useClientProtocol",
     "useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE"),
    ("idle-timeout", """
     host: reviews
     trafficPolicy:
       connectionPool:
         http:
           idleTimeout: 0s  # <-
     """, "spec.trafficPolicy.connectionPool.http.idleTimeout", "duration must be at least 1ms, got '0s'"),
    ("h2-upgrade-policy", """
     host: reviews
     trafficPolicy:
       connectionPool:
         http:
           h2UpgradePolicy: ALWAYS  # <-
     """, "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy",
     "invalid value 'ALWAYS': must be one of DEFAULT, DO_NOT_UPGRADE, UPGRADE"),
    ("insecure-simple", """
     host: reviews
     trafficPolicy:
       tls:
         mode: SIMPLE
         insecureSkipVerify: true  # <-
         caCertificates: /etc/ca.pem
     """, "spec.trafficPolicy.tls.insecureSkipVerify",
     "insecureSkipVerify cannot be combined with caCertificates, credentialName or subjectAltNames"),
    ("insecure-mutual", """
     host: reviews
     trafficPolicy:
       tls:
         mode: MUTUAL
         credentialName: client
         insecureSkipVerify: true  # <-
         subjectAltNames:
         - reviews
     """, "spec.trafficPolicy.tls.insecureSkipVerify",
     "insecureSkipVerify cannot be combined with caCertificates or subjectAltNames"),
    ("credential-and-files", """
     host: reviews
     trafficPolicy:
       tls:
         mode: SIMPLE
         credentialName: client  # <-
         caCertificates: /etc/ca.pem
     """, "spec.trafficPolicy.tls.credentialName",
     "credentialName cannot be combined with clientCertificate, privateKey, caCertificates or caCrl"),
    ("mutual-needs-certificate", """
     host: reviews
     trafficPolicy:
       tls:  # <-
         mode: MUTUAL
         privateKey: /etc/key.pem
     """, "spec.trafficPolicy.tls.clientCertificate", "mode MUTUAL needs clientCertificate (or credentialName)"),
    ("tunnel-protocol", """
     host: reviews
     trafficPolicy:
       tunnel:
         protocol: GET  # <-
         targetHost: proxy.example.com
         targetPort: 3128
     """, "spec.trafficPolicy.tunnel.protocol", "tunnel protocol must be 'CONNECT' or 'POST'"),
    ("tunnel-host", """
     host: reviews
     trafficPolicy:
       tunnel:
         targetHost: "*.example.com"  # <-
         targetPort: 3128
     """, "spec.trafficPolicy.tunnel.targetHost",
     "tunnel targetHost '*.example.com' is neither a host name nor an IP address"),
    ("tunnel-port", """
     host: reviews
     trafficPolicy:
       tunnel:
         targetHost: proxy.example.com
         targetPort: 0  # <-
     """, "spec.trafficPolicy.tunnel.targetPort", "tunnel targetPort must be between 1 and 65535"),
    ("retry-budget", """
     host: reviews
     trafficPolicy:
       retryBudget:
         percent: 150  # <-
     """, "spec.trafficPolicy.retryBudget.percent", "must be <= 100, got 150"),
    ("selector-exported", """
     host: reviews
     workloadSelector:
       matchLabels:
         app: ratings
     exportTo:  # <-
     - "*"
     """, "spec.exportTo", "a DestinationRule with workloadSelector can only be exported to its own namespace"),
    ("export-to-nobody-and-others", """
     host: reviews
     exportTo:  # <-
     - "~"
     - prod
     """, "spec.exportTo", "'~' (export to nobody) cannot be combined with other values"),
    ("subset-policy-checked", """
     host: reviews
     subsets:
     - name: v1
       trafficPolicy:
         loadBalancer:
           simple: FASTEST  # <-
     """, "spec.subsets[0].trafficPolicy.loadBalancer.simple",
     "invalid value 'FASTEST': must be one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, "
     "LEAST_REQUEST"),
]


@pytest.mark.parametrize(("spec", "field", "message"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_rule(assert_rejected, spec: str, field: str, message: str) -> None:
    assert_rejected("DestinationRule", spec, field, message)


@pytest.mark.parametrize(
    "spec",
    [
        """
        host: "*"
        trafficPolicy:
          tls:
            mode: ISTIO_MUTUAL
        """,
        """
        host: reviews
        trafficPolicy:
          tls:
            mode: SIMPLE
            insecureSkipVerify: true
        """,
        """
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash:
              useSourceIp: false
        """,
        """
        host: reviews
        workloadSelector:
          matchLabels:
            app: ratings
        exportTo:
        - "."
        """,
    ],
    ids=["wildcard-host", "insecure-simple-alone", "source-ip-false", "selector-private"],
)
def test_accepted(assert_accepted, spec: str) -> None:
    assert_accepted("DestinationRule", spec)
