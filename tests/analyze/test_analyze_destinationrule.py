"""DestinationRule analyzers: unknown hosts, subsets without pods, rules merged on one host."""

from __future__ import annotations

REVIEWS = """
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
"""


def _pod(name: str, version: str) -> str:
    return f"""
    apiVersion: v1
    kind: Pod
    metadata:
      name: {name}
      labels:
        app: reviews
        version: {version}
    spec:
      containers:
      - name: reviews
    """


def test_unknown_host(analyze_yaml) -> None:
    run = analyze_yaml(REVIEWS, """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews
        spec:
          host: reveiws
        """, """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews-fqdn
        spec:
          host: reviews.default.svc.cluster.local
        """)
    assert run.lines() == [
        f"Warning [IST0174] (DestinationRule default/reviews {run.where('host: reveiws')}) The host reveiws "
        "defined in the DestinationRule does not match any services in the mesh."
    ]


def test_host_of_another_namespace_needs_its_full_name(analyze_yaml) -> None:
    run = analyze_yaml(REVIEWS, """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews
          namespace: prod
        spec:
          host: reviews
        """)
    assert [(finding.code, finding.level) for finding in run.findings] == [("IST0174", "Warning")]
    assert "The host reviews defined" in run.findings[0].message


def test_subset_selecting_no_pods(analyze_yaml) -> None:
    run = analyze_yaml(REVIEWS, _pod("reviews-v1-abc", "v1"), _pod("reviews-v2-abc", "v2"), """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews
        spec:
          host: reviews
          subsets:
          - name: v1
            labels:
              version: v1
          - name: v2
            labels:
              version: v2
          - name: v4
            labels:
              version: v4
        """)
    assert run.lines() == [
        f"Error [IST0173] (DestinationRule default/reviews {run.where('- name: v4')}) The Subset v4 defined in "
        "the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream)."
    ]


def test_subsets_are_not_judged_without_workloads(analyze_yaml) -> None:
    run = analyze_yaml(REVIEWS, """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews
        spec:
          host: reviews
          subsets:
          - name: v4
            labels:
              version: v4
        """)
    assert run.findings == []


def test_service_entry_endpoints_back_subsets(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: db
        spec:
          hosts:
          - db.example.com
          ports:
          - number: 5432
            name: tcp
            protocol: TCP
          resolution: STATIC
          endpoints:
          - address: 10.0.0.1
            labels:
              role: primary
        """, _pod("unrelated", "v1"), """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: db
        spec:
          host: db.example.com
          subsets:
          - name: primary
            labels:
              role: primary
          - name: replica
            labels:
              role: replica
        """)
    assert run.codes() == ["IST0134", "IST0173"]  # IST0134: a TCP entry without addresses
    assert run.findings[1].message.startswith("The Subset replica defined")


def test_rules_merged_cleanly(analyze_yaml) -> None:
    run = analyze_yaml(REVIEWS, """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews-subsets
        spec:
          host: reviews
          subsets:
          - name: v1
        """, """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews-policy
        spec:
          host: reviews.default.svc.cluster.local
          trafficPolicy:
            tls:
              mode: ISTIO_MUTUAL
        """)
    message = ("DestinationRules default/reviews-policy, default/reviews-subsets define the same host "
               "reviews.default.svc.cluster.local; Istio merges them: the merge keeps every setting.")
    assert run.lines() == [
        f"Info [MSH0001] (DestinationRule default/reviews-subsets {run.where('host: reviews', 1)}) {message}",
        f"Info [MSH0001] (DestinationRule default/reviews-policy {run.where('host: reviews', 2)}) {message}",
    ]


def test_rules_merged_with_losses(analyze_yaml) -> None:
    run = analyze_yaml(REVIEWS, """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: a
        spec:
          host: reviews
          trafficPolicy:
            loadBalancer:
              simple: RANDOM
          subsets:
          - name: v1
        """, """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: b
        spec:
          host: reviews
          trafficPolicy:
            loadBalancer:
              simple: ROUND_ROBIN
          subsets:
          - name: v1
        """, """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: selected
        spec:
          host: reviews
          workloadSelector:
            matchLabels:
              app: ratings
          trafficPolicy:
            loadBalancer:
              simple: LEAST_REQUEST
        """)
    message = ("DestinationRules default/a, default/b define the same host reviews.default.svc.cluster.local; "
               "Istio merges them: only the trafficPolicy of default/a applies, the one of default/b is ignored; "
               "subset 'v1' of default/b is dropped as a duplicate.")
    assert [(finding.level, finding.code, finding.message) for finding in run.findings] == [
        ("Warning", "MSH0001", message), ("Warning", "MSH0001", message)]
