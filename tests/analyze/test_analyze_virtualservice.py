"""VirtualService analyzers: references to gateways, hosts, subsets and delegates; overlaps."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from meshctl import analyze
from meshctl.config.loader import load_file

SERVICES = """
apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: ratings
  namespace: prod
spec:
  selector:
    app: ratings
  ports:
  - name: http
    port: 9080
  - name: grpc
    port: 9090
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - name: v1
    labels:
      version: v1
"""


def test_subset_missing_from_destination_rules(analyze_yaml) -> None:
    run = analyze_yaml(SERVICES, """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts:
          - reviews
          http:
          - route:
            - destination:
                host: reviews
                subset: v1
              weight: 50
            - destination:
                host: reviews
                subset: v3
              weight: 50
        """)
    [finding] = run.findings
    assert (finding.level, finding.code) == ("Error", "IST0101")
    assert finding.message == 'Referenced host+subset in destinationrule not found: "reviews+v3"'
    assert finding.resource.where(finding.path) == run.where("subset: v3")
    assert str(finding) == (f"Error [IST0101] (VirtualService default/reviews {run.where('subset: v3')}) "
                            'Referenced host+subset in destinationrule not found: "reviews+v3"')


def test_subset_of_a_wildcard_rule_counts(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: wildcard
        spec:
          host: "*.example.com"
          subsets:
          - name: blue
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: api
        spec:
          hosts:
          - api.example.com
          http:
          - route:
            - destination:
                host: api.example.com
                subset: blue
        """)
    assert run.findings == []


def test_mirror_subset_missing(analyze_yaml) -> None:
    run = analyze_yaml(SERVICES, """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts:
          - reviews
          http:
          - route:
            - destination:
                host: reviews
            mirror:
              host: reviews
              subset: shadow
        """)
    assert run.lines() == [f"Error [IST0101] (VirtualService default/reviews {run.where('subset: shadow')}) "
                           'Referenced mirror+subset in destinationrule not found: "reviews+shadow"']


def test_missing_gateway(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata:
          name: bookinfo-gateway
          namespace: istio-system
        spec:
          servers:
          - port:
              number: 80
              name: http
              protocol: HTTP
            hosts:
            - "*"
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: bookinfo
        spec:
          hosts:
          - bookinfo.com
          gateways:
          - mesh
          - istio-system/bookinfo-gateway
          - bookinfo-gateway.istio-system.svc.cluster.local
          - bookinfo-gateway
          http:
          - route:
            - destination:
                host: productpage
        """)
    [finding] = run.findings
    assert (finding.level, finding.code, finding.message) == (
        "Error", "IST0101", 'Referenced gateway not found: "bookinfo-gateway"')
    assert finding.resource.where(finding.path) == run.where("- bookinfo-gateway", 2)


def test_host_not_exposed_by_gateway(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata:
          name: public
        spec:
          servers:
          - port:
              number: 80
              name: http
              protocol: HTTP
            hosts:
            - "other-ns/*"
            - "*.example.org"
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: bookinfo
        spec:
          hosts:
          - bookinfo.com
          gateways:
          - public
          http:
          - route:
            - destination:
                host: productpage
        """)
    assert run.lines() == [
        f"Warning [IST0132] (VirtualService default/bookinfo {run.where('- public')}) one or more host "
        "[bookinfo.com] defined in VirtualService default/bookinfo not found in Gateway default/public."
    ]


def test_destination_hosts_against_the_registry(analyze_yaml) -> None:
    run = analyze_yaml(SERVICES, """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: external
        spec:
          hosts:
          - "*.googleapis.com"
          ports:
          - number: 443
            name: tls
            protocol: TLS
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: routes
        spec:
          hosts:
          - reviews
          http:
          - route:
            - destination:
                host: reviews
          - route:
            - destination:
                host: reviews.default
          - route:
            - destination:
                host: storage.googleapis.com
          - route:
            - destination:
                host: details
            mirror:
              host: shadow.example.com
        """)
    assert [line for line in run.lines() if "IST0101" in line] == [
        f"Error [IST0101] (VirtualService default/routes {run.where('host: reviews.default', 2)}) "
        'Referenced host not found: "reviews.default"',
        f"Error [IST0101] (VirtualService default/routes {run.where('host: details')}) "
        'Referenced host not found: "details"',
        f"Error [IST0101] (VirtualService default/routes {run.where('host: shadow.example.com')}) "
        'Referenced mirror host not found: "shadow.example.com"',
    ]


def test_ports_of_multi_port_services(analyze_yaml) -> None:
    run = analyze_yaml(SERVICES, """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: ratings
          namespace: prod
        spec:
          hosts:
          - ratings
          http:
          - route:
            - destination:
                host: ratings
          - route:
            - destination:
                host: ratings
                port:
                  number: 9091
          - route:
            - destination:
                host: ratings
                port:
                  number: 9090
        """)
    assert [line for line in run.lines() if "IST0130" not in line] == [
        f"Error [IST0112] (VirtualService prod/ratings {run.where('host: ratings')}) This VirtualService routes "
        'to a service "ratings" that exposes multiple ports [9080 9090]. Specifying a port in the destination '
        "is required to disambiguate.",
        f"Error [IST0101] (VirtualService prod/ratings {run.where('number: 9091')}) "
        'Referenced host:port not found: "ratings:9091"',
    ]


def test_export_to_hides_services(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: private-db
          namespace: team-a
        spec:
          hosts:
          - db.example.com
          exportTo:
          - "."
          ports:
          - number: 5432
            name: tcp
            protocol: TCP
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: db
          namespace: team-b
        spec:
          hosts:
          - db.example.com
          tcp:
          - route:
            - destination:
                host: db.example.com
        """)
    assert run.codes() == ["IST0134", "IST0101"]  # IST0134: a TCP entry without addresses
    assert run.findings[1].message == 'Referenced host not found: "db.example.com"'


def test_no_registry_no_host_findings(analyze_yaml) -> None:
    """Without a single Service or ServiceEntry the input says nothing about which hosts exist."""
    run = analyze_yaml("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts:
          - reviews
          http:
          - route:
            - destination:
                host: reviews
        """)
    assert run.findings == []


def test_missing_delegate(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: root
        spec:
          hosts:
          - bookinfo.com
          gateways:
          - mesh
          http:
          - match:
            - uri:
                prefix: /reviews
            delegate:
              name: reviews
              namespace: nsb
          - match:
            - uri:
                prefix: /ratings
            delegate:
              name: ratings
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: ratings
        spec:
          http:
          - route:
            - destination:
                host: ratings
        """)
    assert run.lines() == [
        f"Error [IST0101] (VirtualService default/root {run.where('name: reviews')}) "
        'Referenced delegate VirtualService not found: "nsb/reviews"'
    ]


def test_conflicting_mesh_virtual_services(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts:
          - reviews
          http:
          - route:
            - destination:
                host: reviews
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews-canary
        spec:
          hosts:
          - reviews.default.svc.cluster.local
          http:
          - route:
            - destination:
                host: reviews
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews-gateway
        spec:
          hosts:
          - reviews
          gateways:
          - public
          http:
          - route:
            - destination:
                host: reviews
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
          namespace: other
        spec:
          hosts:
          - reviews.default.svc.cluster.local
          exportTo:
          - "."
          http:
          - route:
            - destination:
                host: reviews
        """)
    message = ("The VirtualServices default/reviews,default/reviews-canary associated with mesh gateway define the "
               "same host */reviews.default.svc.cluster.local which can lead to undefined behavior. This can be "
               "fixed by merging the conflicting VirtualServices into a single resource.")
    # other/reviews, exported to its own namespace only, still meets the public ones there (as in Istio)
    private = ("The VirtualServices other/reviews,default/reviews,default/reviews-canary associated with mesh gateway "
               "define the same host other/reviews.default.svc.cluster.local which can lead to undefined behavior. "
               "This can be fixed by merging the conflicting VirtualServices into a single resource.")
    ist0109 = [finding for finding in run.findings if finding.code == "IST0109"]
    assert [str(finding) for finding in ist0109] == [
        f"Error [IST0109] (VirtualService default/reviews {run.where('- reviews')}) {message}",
        f"Error [IST0109] (VirtualService default/reviews-canary {run.where('- reviews.default')}) {message}",
        f"Error [IST0109] (VirtualService other/reviews {run.where('- reviews.default', 2)}) {private}",
    ]


def test_conflicting_virtual_services_cost_linear_memory(tmp_path: Path) -> None:
    """IST0109 names every VirtualService of the host in each one's message (istioctl's wording);
    n VirtualServices on one host must still cost O(n) memory, not n messages of n names each
    (6,000 of them took 690 MB)."""
    count = 1500
    path = tmp_path / "many.yaml"
    path.write_text("".join(
        f"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews-{index}}}\n"
        "spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews}}]}]}\n"
        for index in range(count)))
    resources = load_file(str(path)).resources
    tracemalloc.start()
    try:
        findings = analyze.run(resources)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    conflicts = [finding for finding in findings if finding.code == "IST0109"]
    assert len(conflicts) == count
    names = ",".join(f"default/reviews-{index}" for index in range(count))
    assert conflicts[0].message.startswith(f"The VirtualServices {names} associated with mesh gateway")
    assert held < 3_000_000, f"{held / 1e6:.1f} MB for {count} findings"


def test_unreachable_rules(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts:
          - reviews
          http:
          - name: jason
            match:
            - name: user
              headers:
                end-user:
                  exact: jason
            route:
            - destination:
                host: reviews
          - name: again
            match:
            - headers:
                end-user:
                  exact: jason
            route:
            - destination:
                host: reviews
          - route:
            - destination:
                host: reviews
          - route:
            - destination:
                host: reviews
        """)
    assert run.lines() == [
        f"Warning [IST0130] (VirtualService default/reviews {run.where('- name: again')}) "
        'VirtualService rule "again" not used (all matches used by prior rules).',
        f"Info [IST0131] (VirtualService default/reviews {run.where('- headers:')}) "
        'VirtualService rule "again" match #0 is not used (duplicate/overlapping match in rule "jason").',
        f"Warning [IST0130] (VirtualService default/reviews {run.where('- route:', 2)}) "
        "VirtualService rule #3 not used (only the last rule can have no matches).",
    ]
