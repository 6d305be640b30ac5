"""Analyzers that need workloads: Gateway selectors and ports, Sidecar selection, Service ports."""

from __future__ import annotations

INGRESS_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: istio-ingressgateway-abc
  namespace: istio-system
  labels:
    istio: ingressgateway
spec:
  containers:
  - name: istio-proxy
"""

INGRESS_SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  ports:
  - name: http2
    port: 80
    targetPort: 8080
  - name: https
    port: 443
    targetPort: 8443
"""


def _gateway(selector: str, port: int = 80) -> str:
    return f"""
    apiVersion: networking.istio.io/v1
    kind: Gateway
    metadata:
      name: public
    spec:
      selector:
        {selector}
      servers:
      - port:
          number: {port}
          name: http
          protocol: HTTP
        hosts:
        - "*"
    """


def test_gateway_selector_matches_nothing(analyze_yaml) -> None:
    run = analyze_yaml(INGRESS_POD, _gateway("istio: ingress"))
    assert run.lines() == [
        f"Error [IST0101] (Gateway default/public {run.where('istio: ingress', 2)}) "
        'Referenced selector not found: "istio=ingress"'
    ]


def test_gateway_selector_matches_pods_anywhere(analyze_yaml) -> None:
    run = analyze_yaml(INGRESS_POD, INGRESS_SERVICE, _gateway("istio: ingressgateway"))
    assert run.findings == []


def test_gateway_selectors_need_workloads_in_the_input(analyze_yaml) -> None:
    run = analyze_yaml(_gateway("istio: ingress"))
    assert run.findings == []


def test_gateway_port_missing_from_service(analyze_yaml) -> None:
    run = analyze_yaml(INGRESS_POD, INGRESS_SERVICE, _gateway("istio: ingressgateway", 9000))
    assert run.lines() == [
        f"Warning [IST0162] (Gateway default/public {run.where('number: 9000')}) The gateway is listening on a "
        "target port (port 9000) that is not defined in the Service associated with its workload instances "
        "(Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway "
        "Service, it will not be available."
    ]


def test_gateway_port_may_be_the_target_port(analyze_yaml) -> None:
    run = analyze_yaml(INGRESS_POD, INGRESS_SERVICE, _gateway("istio: ingressgateway", 8080))
    assert run.findings == []


def _sidecar(name: str, selector: str = "") -> str:
    selection = f"\n      workloadSelector:\n        labels:\n          {selector}" if selector else ""
    return f"""
    apiVersion: networking.istio.io/v1
    kind: Sidecar
    metadata:
      name: {name}
    spec:{selection}
      egress:
      - hosts:
        - "./*"
    """


def test_two_default_sidecars(analyze_yaml) -> None:
    run = analyze_yaml(_sidecar("first"), _sidecar("second"), _sidecar("selected", "app: reviews"))
    message = ('The Sidecars [first second] in namespace "default" have no workload selector, which can lead '
               "to undefined behavior.")
    assert run.lines() == [
        f"Error [IST0111] (Sidecar default/first {run.where('spec:', 1)}) {message}",
        f"Error [IST0111] (Sidecar default/second {run.where('spec:', 2)}) {message}",
    ]


def test_two_sidecars_select_one_pod(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: v1
        kind: Pod
        metadata:
          name: reviews-v1
          labels:
            app: reviews
            version: v1
        spec:
          containers:
          - name: reviews
        """, _sidecar("by-app", "app: reviews"), _sidecar("by-version", "version: v1"),
        _sidecar("other", "app: ratings"))
    message = ('The Sidecars [by-app by-version] in namespace "default" select the same workload pod '
               '"reviews-v1", which can lead to undefined behavior.')
    assert run.lines() == [
        f"Error [IST0110] (Sidecar default/by-app {run.where('workloadSelector:', 1)}) {message}",
        f"Error [IST0110] (Sidecar default/by-version {run.where('workloadSelector:', 2)}) {message}",
        f"Error [IST0101] (Sidecar default/other {run.where('workloadSelector:', 3)}) "
        'Referenced selector not found: "app=ratings"',
    ]


def test_service_port_names(analyze_yaml) -> None:
    run = analyze_yaml("""
        apiVersion: v1
        kind: Service
        metadata:
          name: reviews
        spec:
          ports:
          - name: http-web
            port: 80
          - name: grpc
            port: 81
          - name: web
            port: 82
            targetPort: 8082
          - name: admin
            port: 83
            appProtocol: http
        """)
    assert run.lines() == [
        f"Info [IST0118] (Service default/reviews {run.where('- name: web')}) Port name web (port: 82, "
        "targetPort: 8082) doesn't follow the naming convention of Istio port."
    ]


def test_invalid_annotation_values_are_the_injectors_refusals(analyze_yaml) -> None:
    """IST0125 reports exactly what kube-inject and the webhook refuse, in the injector's words:
    a port list and a CIDR list (checks that need Go's parse errors), not only simple values."""
    run = analyze_yaml("""
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          annotations:
            traffic.sidecar.istio.io/excludeInboundPorts: "80,http"
            traffic.sidecar.istio.io/excludeOutboundIPRanges: "10.0.0.0/33"
            sidecar.istio.io/interceptionMode: TPROXY
        spec:
          containers:
          - name: web
        """)
    ports = "traffic.sidecar.istio.io/excludeInboundPorts"
    ranges = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
    assert run.lines() == [
        f"Warning [IST0125] (Pod default/web {run.where('excludeInboundPorts')}) Invalid annotation {ports}: "
        "excludeInboundPorts invalid: failed parsing port 'http': failed parsing port 'http': "
        'strconv.ParseUint: parsing "http": invalid syntax',
        f"Warning [IST0125] (Pod default/web {run.where('excludeOutboundIPRanges')}) Invalid annotation {ranges}: "
        "excludeIPRanges invalid: failed parsing cidr '10.0.0.0/33': "
        'netip.ParsePrefix("10.0.0.0/33"): prefix length out of range',
    ]
