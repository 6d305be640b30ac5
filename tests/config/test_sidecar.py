"""Sidecar: Istio's webhook rules, each with an example it refuses."""

from __future__ import annotations

import pytest

CASES = [
    ("empty", """
     workloadSelector:
       labels:
         app: ratings
     """, "spec", "a Sidecar must set at least one of egress, ingress, outboundTrafficPolicy, inboundConnectionPool"),
    ("selector-wildcard", """
     workloadSelector:
       labels:
         "app*": ratings  # <-
     egress:
     - hosts:
       - "./*"
     """, "spec.workloadSelector.labels['app*']", "wildcards are not supported in selectors (app*=ratings)"),
    ("ingress-needs-port", """
     ingress:
     - defaultEndpoint: 127.0.0.1:8080  # <-
     """, "spec.ingress[0].port", "required field is missing"),
    ("ingress-port-number", """
     ingress:
     - port:
         number: 0  # <-
         protocol: HTTP
         name: http
     """, "spec.ingress[0].port.number", "port number must be between 1 and 65535"),
    ("ingress-duplicate-ports", """
     ingress:
     - port:
         number: 9080
         protocol: HTTP
         name: http
     - port:
         number: 9080  # <-
         protocol: HTTP
         name: http2
     """, "spec.ingress[1].port.number", "port 9080 is used by another ingress listener"),
    ("ingress-bind", """
     ingress:
     - port:
         number: 9080
         protocol: HTTP
         name: http
       bind: localhost  # <-
     """, "spec.ingress[0].bind", "invalid bind address 'localhost': must be an IP address"),
    ("ingress-default-endpoint-host", """
     ingress:
     - port:
         number: 9080
         protocol: HTTP
         name: http
       defaultEndpoint: 10.0.0.1:8080  # <-
     """, "spec.ingress[0].defaultEndpoint",
     "defaultEndpoint must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix://path"),
    ("ingress-default-endpoint-port", """
     ingress:
     - port:
         number: 9080
         protocol: HTTP
         name: http
       defaultEndpoint: 127.0.0.1:http  # <-
     """, "spec.ingress[0].defaultEndpoint", "defaultEndpoint port 'http' must be a number between 1 and 65535"),
    ("ingress-protocol", """
     ingress:
     - port:
         number: 9080
         protocol: QUIC  # <-
         name: http
     """, "spec.ingress[0].port.protocol", "unsupported protocol 'QUIC'"),
    ("ingress-port-name", """
     ingress:
     - port:
         number: 9080
         protocol: HTTP
         name: http_main  # <-
     """, "spec.ingress[0].port.name", "invalid port name 'http_main': must be a DNS label"),
    ("ingress-target-port", """
     ingress:
     - port:
         number: 9080
         protocol: HTTP
         name: http
         targetPort: 8080  # <-
     """, "spec.ingress[0].port.targetPort", "targetPort has no effect on Sidecars"),
    ("ingress-tls-credential", """
     ingress:
     - port:
         number: 9443
         protocol: HTTPS
         name: https
       tls:
         mode: SIMPLE
         credentialName: cert  # <-
     """, "spec.ingress[0].tls.credentialName", "credentialName is not supported on Sidecar ingress"),
    ("ingress-tls-mode", """
     ingress:
     - port:
         number: 9443
         protocol: HTTPS
         name: https
       tls:
         mode: ISTIO_MUTUAL  # <-
     """, "spec.ingress[0].tls.mode", "mode ISTIO_MUTUAL is not allowed on Sidecar ingress"),
    ("ingress-tls-files", """
     ingress:
     - port:
         number: 9443
         protocol: HTTPS
         name: https
       tls:  # <-
         mode: SIMPLE
         serverCertificate: /etc/cert.pem
     """, "spec.ingress[0].tls.privateKey", "mode SIMPLE needs privateKey (or credentialName)"),
    ("egress-needs-hosts", """
     egress:
     - port:  # <-
         number: 80
         protocol: HTTP
         name: http
     """, "spec.egress[0].hosts", "required field is missing"),
    ("egress-host-form", """
     egress:
     - hosts:
       - reviews.example.com  # <-
     """, "spec.egress[0].hosts[0]",
     "invalid host 'reviews.example.com': use namespace/dnsName, for example './*' or 'istio-system/*'"),
    ("egress-short-host", """
     egress:
     - hosts:
       - prod/reviews  # <-
     """, "spec.egress[0].hosts[0]", "short name 'reviews' is not allowed; use a fully qualified name"),
    ("egress-host-namespace", """
     egress:
     - hosts:
       - "prod_us/*"  # <-
     """, "spec.egress[0].hosts[0]", "invalid namespace 'prod_us' in host 'prod_us/*'"),
    ("egress-ip-host", """
     egress:
     - hosts:
       - "*/10.0.0.1"  # <-
     """, "spec.egress[0].hosts[0]", "invalid host '10.0.0.1': the top-level domain must not be all digits"),
    ("egress-catch-all-last", """
     egress:
     - hosts:  # <-
       - "./*"
     - port:
         number: 80
         protocol: HTTP
         name: http
       hosts:
       - "./*"
     """, "spec.egress[0]", "the egress listener without port must be the last one"),
    ("egress-duplicate-ports", """
     egress:
     - port:
         number: 80
         protocol: HTTP
         name: http
       hosts:
       - "./*"
     - port:
         number: 80  # <-
         protocol: HTTP
         name: http2
       hosts:
       - "./*"
     """, "spec.egress[1].port.number", "port 80 is used by another egress listener"),
    ("egress-uds-needs-bind", """
     egress:
     - port:
         number: 0
         protocol: HTTP
         name: uds
       bind: 127.0.0.1  # <-
       hosts:
       - "./*"
     """, "spec.egress[0].bind", "a listener with port number 0 needs a unix://path bind address"),
    ("egress-uds-capture-mode", """
     egress:
     - port:
         number: 0
         protocol: HTTP
         name: uds
       bind: unix:///var/run/app.sock
       captureMode: IPTABLES  # <-
       hosts:
       - "./*"
     """, "spec.egress[0].captureMode", "captureMode must be DEFAULT or NONE for a unix socket listener"),
    ("egress-duplicate-sockets", """
     egress:
     - port:
         number: 0
         protocol: HTTP
         name: uds
       bind: unix:///var/run/app.sock
       hosts:
       - "./*"
     - port:
         number: 0
         protocol: HTTP
         name: uds2
       bind: unix:///var/run/app.sock  # <-
       hosts:
       - "./*"
     """, "spec.egress[1].bind", "unix socket 'unix:///var/run/app.sock' is used by another egress listener"),
    ("egress-bind", """
     egress:
     - port:
         number: 3306
         protocol: MYSQL
         name: mysql
       bind: db.local  # <-
       hosts:
       - "./*"
     """, "spec.egress[0].bind", "invalid bind address 'db.local': must be an IP address"),
    ("egress-proxy-mode", """
     outboundTrafficPolicy:
       mode: REGISTRY_ONLY
       egressProxy:  # <-
         host: proxy.example.com
         port:
           number: 3128
     """, "spec.outboundTrafficPolicy.egressProxy", "egressProxy needs mode ALLOW_ANY"),
    ("egress-proxy-port", """
     outboundTrafficPolicy:
       mode: ALLOW_ANY
       egressProxy:  # <-
         host: proxy.example.com
     """, "spec.outboundTrafficPolicy.egressProxy.port", "egressProxy needs a port"),
    ("egress-proxy-host", """
     outboundTrafficPolicy:
       mode: ALLOW_ANY
       egressProxy:
         host: "*.proxy.example.com"  # <-
         port:
           number: 3128
     """, "spec.outboundTrafficPolicy.egressProxy.host", "wildcard host '*.proxy.example.com' is not allowed here"),
    ("inbound-pool", """
     inboundConnectionPool:
       tcp:
         connectTimeout: 1us  # <-
     """, "spec.inboundConnectionPool.tcp.connectTimeout", "duration must be at least 1ms, got '1us'"),
]


@pytest.mark.parametrize(("spec", "field", "message"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_rule(assert_rejected, spec: str, field: str, message: str) -> None:
    assert_rejected("Sidecar", spec, field, message)


def test_two_catch_all_egress_listeners(load_text) -> None:
    text = (
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\nspec:\n  egress:\n"
        "  - hosts:\n    - ./*\n  - hosts:\n    - istio-system/*\n"
    )
    file, result = load_text(text)
    assert [str(problem) for problem in result.problems] == [
        f"{file}:7: Sidecar default/default: spec.egress[0]: the egress listener without port must be the last one",
        f"{file}:9: Sidecar default/default: spec.egress[1]: only one egress listener may omit port",
    ]
