"""ServiceEntry and WorkloadEntry: Istio's webhook rules, each with an example it refuses."""

from __future__ import annotations

import pytest

SERVICE_ENTRY_CASES = [
    ("hosts-required", """
     ports:
     - number: 80
       name: http
     """, "spec.hosts", "required field is missing"),
    ("star-host", """
     hosts:
     - "*"  # <-
     """, "spec.hosts[0]", "'*' is not a valid ServiceEntry host"),
    ("invalid-host", """
     hosts:
     - api_example.com  # <-
     """, "spec.hosts[0]", "'api_example.com' is not a valid DNS name (label 'api_example')"),
    ("address", """
     hosts:
     - db.example.com
     addresses:
     - 10.0.0.300  # <-
     """, "spec.addresses[0]", "invalid IP address '10.0.0.300'"),
    ("cidr-with-dns", """
     hosts:
     - db.example.com
     addresses:  # <-
     - 10.0.0.0/24
     resolution: DNS
     """, "spec.addresses", "CIDR addresses need resolution NONE or STATIC"),
    ("duplicate-port-name", """
     hosts:
     - db.example.com
     ports:
     - number: 80
       name: http
     - number: 8080
       name: http  # <-
     """, "spec.ports[1].name", "port name 'http' is already defined"),
    ("duplicate-port-number", """
     hosts:
     - db.example.com
     ports:
     - number: 80
       name: http
     - number: 80  # <-
       name: http-alt
     """, "spec.ports[1].number", "port 80 is already defined"),
    ("port-name", """
     hosts:
     - db.example.com
     ports:
     - number: 80
       name: http_1  # <-
     """, "spec.ports[0].name", "invalid port name 'http_1': must be a DNS label"),
    ("port-name-required", """
     hosts:
     - db.example.com
     ports:
     - number: 80  # <-
       protocol: HTTP
     """, "spec.ports[0].name", "required field is missing"),
    ("port-protocol", """
     hosts:
     - db.example.com
     ports:
     - number: 80
       name: web
       protocol: QUIC  # <-
     """, "spec.ports[0].protocol", "unsupported protocol 'QUIC'"),
    ("port-number", """
     hosts:
     - db.example.com
     ports:
     - number: 65536  # <-
       name: web
     """, "spec.ports[0].number", "must be <= 65535, got 65536"),
    ("none-with-endpoints", """
     hosts:
     - db.example.com
     endpoints:  # <-
     - address: 10.0.0.1
     """, "spec.endpoints", "endpoints cannot be set with resolution NONE"),
    ("static-hostname-endpoint", """
     hosts:
     - db.example.com
     resolution: STATIC
     endpoints:
     - address: db1.example.com  # <-
     """, "spec.endpoints[0].address",
     "endpoint address 'db1.example.com' must be an IP address with resolution STATIC"),
    ("dns-wildcard-without-endpoints", """
     hosts:
     - "*.example.com"  # <-
     resolution: DNS
     """, "spec.hosts[0]",
     "host '*.example.com' must be a fully qualified name without wildcards: resolution is DNS and there are no "
     "endpoints"),
    ("round-robin-endpoints", """
     hosts:
     - db.example.com
     resolution: DNS_ROUND_ROBIN
     endpoints:  # <-
     - address: a.example.com
     - address: b.example.com
     """, "spec.endpoints", "resolution DNS_ROUND_ROBIN allows at most one endpoint"),
    ("dynamic-dns-endpoints", """
     hosts:
     - "*.example.com"
     resolution: DYNAMIC_DNS
     endpoints:  # <-
     - address: a.example.com
     """, "spec.endpoints", "endpoints cannot be set with resolution DYNAMIC_DNS"),
    ("endpoint-port-undefined", """
     hosts:
     - db.example.com
     ports:
     - number: 80
       name: http
     resolution: DNS
     endpoints:
     - address: a.example.com
       ports:
         https: 443  # <-
     """, "spec.endpoints[0].ports.https", "endpoint port 'https' is not a port of the ServiceEntry"),
    ("several-hosts-tcp", """
     hosts:
     - a.example.com
     - b.example.com
     ports:
     - number: 5432
       name: postgres
       protocol: TCP  # <-
     resolution: DNS
     """, "spec.ports[0].protocol", "several hosts need HTTP or TLS ports unless resolution is NONE"),
    ("selector-and-endpoints", """
     hosts:
     - db.example.com
     resolution: STATIC
     workloadSelector:
       labels:
         app: db
     endpoints:  # <-
     - address: 10.0.0.1
     """, "spec.endpoints", "only one of workloadSelector, endpoints may be set"),
    ("selector-wildcard", """
     hosts:
     - db.example.com
     workloadSelector:
       labels:
         app: "db*"  # <-
     """, "spec.workloadSelector.labels.app", "wildcards are not supported in selectors (app=db*)"),
    ("unix-endpoint-ports", """
     hosts:
     - db.example.com
     resolution: STATIC
     ports:
     - number: 80
       name: http
     endpoints:
     - address: unix:///var/run/db.sock
       ports:  # <-
         http: 80
     """, "spec.endpoints[0].ports", "a unix socket endpoint cannot have ports"),
    ("unix-endpoint-two-ports", """
     hosts:
     - db.example.com
     resolution: STATIC
     ports:
     - number: 80
       name: http
     - number: 81
       name: http-alt
     endpoints:
     - address: unix:///var/run/db.sock  # <-
     """, "spec.endpoints[0].address", "a unix socket endpoint needs exactly one ServiceEntry port"),
    ("export-to-namespace", """
     hosts:
     - db.example.com
     exportTo:
     - Prod  # <-
     """, "spec.exportTo[0]", "invalid value 'Prod': use '.', '*', '~' or a namespace name"),
]

WORKLOAD_ENTRY_CASES = [
    ("address-required", """
     labels:
       app: vm
     """, "spec.address", "address is required unless network is set"),
    ("address-invalid", """
     address: "vm 1.example.com"  # <-
     """, "spec.address", "address 'vm 1.example.com' is neither an IP address nor a host name"),
    ("unix-relative", """
     address: unix://var/run/app.sock  # <-
     """, "spec.address", "unix socket 'var/run/app.sock' must be an absolute path to a file"),
    ("port-name", """
     address: 10.0.0.1
     ports:
       "http 1": 8080  # <-
     """, "spec.ports['http 1']", "invalid port name 'http 1': must be a DNS label"),
    ("port-number", """
     address: 10.0.0.1
     ports:
       http: 0  # <-
     """, "spec.ports.http", "must be >= 1, got 0"),
    ("labels", """
     address: 10.0.0.1
     labels:
       "app/x/y": vm  # <-
     """, "spec.labels['app/x/y']", "invalid label key 'app/x/y': prefix must be a DNS subdomain"),
]


@pytest.mark.parametrize(("spec", "field", "message"), [case[1:] for case in SERVICE_ENTRY_CASES],
                         ids=[case[0] for case in SERVICE_ENTRY_CASES])
def test_service_entry_rule(assert_rejected, spec: str, field: str, message: str) -> None:
    assert_rejected("ServiceEntry", spec, field, message)


@pytest.mark.parametrize(("spec", "field", "message"), [case[1:] for case in WORKLOAD_ENTRY_CASES],
                         ids=[case[0] for case in WORKLOAD_ENTRY_CASES])
def test_workload_entry_rule(assert_rejected, spec: str, field: str, message: str) -> None:
    assert_rejected("WorkloadEntry", spec, field, message)


def test_several_hosts_with_resolution_none(assert_accepted) -> None:
    assert_accepted("ServiceEntry", """
        hosts:
        - a.example.com
        - b.example.com
        ports:
        - number: 5432
          name: postgres
          protocol: TCP
        """)
