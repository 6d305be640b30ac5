"""Gateway: Istio's webhook rules, each with an example it refuses."""

from __future__ import annotations

import pytest

SERVER = """
servers:
- port:
    number: 443
    name: https
    protocol: HTTPS
  hosts:
  - bookinfo.example.com
  tls:
"""
SERVER_TLS_MARKED = SERVER.replace("  tls:", "  tls:  # <-")

CASES = [
    ("servers-required", """
     selector:
       istio: ingressgateway
     """, "spec.servers", "required field is missing"),
    ("hosts-required", """
     servers:
     - port:  # <-
         number: 80
         name: http
         protocol: HTTP
     """, "spec.servers[0].hosts", "required field is missing"),
    ("port-required", """
     servers:
     - hosts:  # <-
       - "*"
     """, "spec.servers[0].port", "required field is missing"),
    ("port-name-required", """
     servers:
     - port:  # <-
         number: 80
         protocol: HTTP
       hosts:
       - "*"
     """, "spec.servers[0].port.name", "required field is missing"),
    ("protocol", """
     servers:
     - port:
         number: 80
         name: http
         protocol: SPDY  # <-
       hosts:
       - "*"
     """, "spec.servers[0].port.protocol",
     "invalid protocol 'SPDY'; use one of HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TLS, TCP, MONGO, REDIS, MYSQL"),
    ("port-number", """
     servers:
     - port:
         number: 0  # <-
         name: http
         protocol: HTTP
       hosts:
       - "*"
     """, "spec.servers[0].port.number", "port number must be between 1 and 65535"),
    ("unix-bind-with-port", """
     servers:
     - port:
         number: 80  # <-
         name: http
         protocol: HTTP
       bind: unix:///var/run/gw.sock
       hosts:
       - "*"
     """, "spec.servers[0].port.number", "port number must be 0 with a unix socket bind address"),
    ("unix-bind-relative", """
     servers:
     - port:
         number: 0
         name: http
         protocol: HTTP
       bind: unix://gw.sock  # <-
       hosts:
       - "*"
     """, "spec.servers[0].bind", "unix socket 'gw.sock' must be an absolute path to a file"),
    ("bind-address", """
     servers:
     - port:
         number: 80
         name: http
         protocol: HTTP
       bind: localhost  # <-
       hosts:
       - "*"
     """, "spec.servers[0].bind", "invalid bind address 'localhost': must be an IP address or unix://path"),
    ("target-port", """
     servers:
     - port:
         number: 80
         name: http
         protocol: HTTP
         targetPort: 8080  # <-
       hosts:
       - "*"
     """, "spec.servers[0].port.targetPort", "targetPort has no effect on gateways"),
    ("duplicate-port-names", """
     servers:
     - port:
         number: 80
         name: http
         protocol: HTTP
       hosts:
       - a.example.com
     - port:
         number: 8080
         name: http  # <-
         protocol: HTTP
       hosts:
       - b.example.com
     """, "spec.servers[1].port.name", "duplicate port name 'http': port names must be unique across servers"),
    ("short-host", """
     servers:
     - port:
         number: 80
         name: http
         protocol: HTTP
       hosts:
       - reviews  # <-
     """, "spec.servers[0].hosts[0]", "short name 'reviews' is not allowed; use a fully qualified name"),
    ("host-namespace", """
     servers:
     - port:
         number: 80
         name: http
         protocol: HTTP
       hosts:
       - Bad_NS/reviews.example.com  # <-
     """, "spec.servers[0].hosts[0]", "invalid namespace 'Bad_NS' in host 'Bad_NS/reviews.example.com'"),
    ("host-empty-half", """
     servers:
     - port:
         number: 80
         name: http
         protocol: HTTP
       hosts:
       - prod/  # <-
     """, "spec.servers[0].hosts[0]", "invalid host 'prod/': namespace and dnsName must not be empty"),
    ("partial-wildcard", """
     servers:
     - port:
         number: 80
         name: http
         protocol: HTTP
       hosts:
       - "*foo.example.com"  # <-
     """, "spec.servers[0].hosts[0]", "partial wildcard '*foo.example.com' is not allowed"),
    ("https-needs-tls", """
     servers:
     - port:  # <-
         number: 443
         name: https
         protocol: HTTPS
       hosts:
       - "*"
     """, "spec.servers[0].tls", "HTTPS servers need tls settings"),
    ("tcp-with-tls", """
     servers:
     - port:
         number: 3306
         name: mysql
         protocol: MYSQL
       hosts:
       - "*"
       tls:  # <-
         mode: SIMPLE
         credentialName: mysql
     """, "spec.servers[0].tls", "tls settings need an HTTPS or TLS port"),
    ("http-with-termination", """
     servers:
     - port:
         number: 80
         name: http
         protocol: HTTP
       hosts:
       - "*"
       tls:  # <-
         mode: SIMPLE
         credentialName: cert
     """, "spec.servers[0].tls", "plain-text HTTP servers only take tls.httpsRedirect"),
    ("istio-mutual-with-credential", SERVER + """
         mode: ISTIO_MUTUAL
         credentialName: cert  # <-
     """, "spec.servers[0].tls.credentialName", "credentialName cannot be set with mode ISTIO_MUTUAL"),
    ("simple-needs-certificate", SERVER_TLS_MARKED + """
         mode: SIMPLE
         privateKey: /etc/key.pem
     """, "spec.servers[0].tls.serverCertificate", "mode SIMPLE needs serverCertificate (or credentialName)"),
    ("mutual-needs-ca", SERVER_TLS_MARKED + """
         mode: MUTUAL
         serverCertificate: /etc/cert.pem
         privateKey: /etc/key.pem
     """, "spec.servers[0].tls.caCertificates", "mode MUTUAL needs caCertificates (or credentialName)"),
    ("crl-with-credential", SERVER + """
         mode: MUTUAL
         credentialName: cert
         caCrl: /etc/crl.pem  # <-
     """, "spec.servers[0].tls.caCrl", "caCrl cannot be combined with credentialName; put the CRL in the credential"),
    ("crl-with-simple", SERVER + """
         mode: SIMPLE
         serverCertificate: /etc/cert.pem
         privateKey: /etc/key.pem
         caCrl: /etc/crl.pem  # <-
     """, "spec.servers[0].tls.caCrl", "caCrl is not supported with mode SIMPLE"),
    ("credential-name-and-names", SERVER + """
         mode: SIMPLE
         credentialName: a
         credentialNames:  # <-
         - b
     """, "spec.servers[0].tls.credentialNames", "only one of credentialName, credentialNames, tlsCertificates may be set"),
    ("three-credentials", SERVER + """
         mode: SIMPLE
         credentialNames:  # <-
         - a
         - b
         - c
     """, "spec.servers[0].tls.credentialNames", "at most 2 certificates may be set"),
    ("no-credentials", SERVER + """
         mode: SIMPLE
         credentialNames: []  # <-
     """, "spec.servers[0].tls.credentialNames", "must have at least 1 item(s)"),
    ("tls-version", SERVER + """
         mode: SIMPLE
         credentialName: cert
         minProtocolVersion: TLSV1_4  # <-
     """, "spec.servers[0].tls.minProtocolVersion",
     "invalid value 'TLSV1_4': must be one of TLS_AUTO, TLSV1_0, TLSV1_1, TLSV1_2, TLSV1_3"),
]


@pytest.mark.parametrize(("spec", "field", "message"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_rule(assert_rejected, spec: str, field: str, message: str) -> None:
    assert_rejected("Gateway", spec, field, message)


@pytest.mark.parametrize(
    "spec",
    [
        """
        servers:
        - port:
            number: 80
            name: http
            protocol: http
          hosts:
          - 192.168.0.1
          - "./*"
          tls:
            httpsRedirect: true
        """,
        SERVER + """
            mode: OPTIONAL_MUTUAL
            credentialName: cert
        """,
        SERVER + """
            mode: MUTUAL
            tlsCertificates:
            - serverCertificate: /etc/cert.pem
              privateKey: /etc/key.pem
            caCertCredentialName: client-ca
        """,
    ],
    ids=["lowercase-protocol-ip-host", "credential-covers-mutual", "ca-credential"],
)
def test_accepted(assert_accepted, spec: str) -> None:
    assert_accepted("Gateway", spec)
