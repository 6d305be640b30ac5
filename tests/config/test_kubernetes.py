"""The Kubernetes kinds as typed views: API wire names, API-server defaults, unread parts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshctl.config.kinds import KINDS
from meshctl.config.kinds.kubernetes import (
    DeploymentSpec,
    Endpoints,
    EndpointSlice,
    PodSpec,
    PodStatus,
    ServiceSpec,
)
from meshctl.config.loader import FileResult
from meshctl.config.resource import Resource

Load = Callable[[str], tuple[str, FileResult]]

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  clusterIP: 10.96.0.7
  clusterIPs: [10.96.0.7]
  externalIPs: [192.0.2.1]
  loadBalancerIP: 192.0.2.2
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 30}}
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080, targetPort: web}
  - {name: grpc, port: 9090, targetPort: 9091, protocol: UDP, appProtocol: grpc}
"""

POD = """
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1}
spec:
  serviceAccount: legacy
  containers:
  - name: app
    livenessProbe: {httpGet: {path: /, port: 80}}
    ports:
    - {name: web, containerPort: 8080, hostIP: 0.0.0.0}
    - {name: web, containerPort: 8081}
    - {containerPort: 9000}
status:
  podIP: 10.244.0.9
  podIPs: [{ip: 10.244.0.9}]
  hostIP: 192.168.1.4
  conditions: [{type: Ready, status: "True"}]
"""


def _single(load_text: Load, text: str) -> Resource:
    _, result = load_text(text)
    assert [str(problem) for problem in result.problems] == []
    (resource,) = result.resources
    return resource


def test_service_wire_names_that_are_not_camel_case_of_python_names(load_text: Load) -> None:
    spec = _single(load_text, SERVICE).view_as(ServiceSpec)
    assert (spec.cluster_ip, spec.cluster_ips, spec.external_ips, spec.load_balancer_ip) == (
        "10.96.0.7", ("10.96.0.7",), ("192.0.2.1",), "192.0.2.2")
    assert "sessionAffinityConfig" in ServiceSpec.SCHEMA.fields and not hasattr(spec, "session_affinity_config")


def test_service_ports_keep_int_or_string_target_ports_and_default_the_protocol(load_text: Load) -> None:
    spec = _single(load_text, SERVICE).view_as(ServiceSpec)
    assert [(p.name, p.port, p.target_port, p.protocol, p.app_protocol) for p in spec.ports] == [
        ("http", 9080, "web", "TCP", ""), ("grpc", 9090, 9091, "UDP", "grpc")]
    assert (spec.type, dict(spec.selector), spec.publish_not_ready_addresses) == ("ClusterIP", {"app": "reviews"}, False)


def test_pod_spec_and_status_views(load_text: Load) -> None:
    pod = _single(load_text, POD)
    spec, status = pod.view_as(PodSpec), pod.status_as(PodStatus)
    assert spec.account == "legacy"
    assert spec.named_ports() == {"web": 8080}
    assert spec.containers[0].ports[0].host_ip == "0.0.0.0"
    assert (status.pod_ip, [ip.ip for ip in status.pod_ips], status.host_ip, status.phase) == (
        "10.244.0.9", ["10.244.0.9"], "192.168.1.4", "Running")


def test_a_pod_without_status_has_an_empty_status_view(load_text: Load) -> None:
    text = POD.split("status:")[0]
    status = _single(load_text, text).status_as(PodStatus)
    assert (status.pod_ip, status.pod_ips, status.phase) == ("", (), "Running")


def test_pod_status_stays_open_and_pod_spec_stays_strict(load_text: Load) -> None:
    """A kubelet's status carries much meshctl does not read (`conditions` above); a spec typo is an error."""
    _, result = load_text(POD.replace("  serviceAccount:", "  serviceAcount:"))
    assert [(problem.field, problem.message) for problem in result.problems] == [
        ("spec.serviceAcount", "unknown field 'serviceAcount' (did you mean 'serviceAccount'?)")]


def test_deployment_defaults_one_replica(load_text: Load) -> None:
    deployment = _single(load_text, """
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews}
spec:
  selector: {matchLabels: {app: reviews}}
  strategy: {type: Recreate}
  template:
    metadata: {labels: {app: reviews}, annotations: {sidecar.istio.io/inject: "true"}}
    spec: {serviceAccountName: bookinfo, containers: [{name: app}]}
""").view_as(DeploymentSpec)
    assert deployment.replicas == 1
    assert dict(deployment.selector.match_labels) == {"app": "reviews"}
    assert deployment.template.metadata is not None
    assert dict(deployment.template.metadata.annotations) == {"sidecar.istio.io/inject": "true"}
    assert deployment.template.spec.account == "bookinfo"


def test_endpoints_and_slices_read_their_top_level_fields(load_text: Load) -> None:
    endpoints = _single(load_text, """
apiVersion: v1
kind: Endpoints
metadata: {name: reviews}
subsets:
- addresses: [{ip: 10.0.0.1, targetRef: {kind: Pod, name: a}}]
  notReadyAddresses: [{ip: 10.0.0.2}]
  ports: [{name: http, port: 9080}]
""").view_as(Endpoints)
    (subset,) = endpoints.subsets
    assert [a.ip for a in subset.addresses] == ["10.0.0.1"] and subset.addresses[0].target_ref is not None
    assert [a.ip for a in subset.not_ready_addresses] == ["10.0.0.2"]
    assert [(p.name, p.port, p.protocol) for p in subset.ports] == [("http", 9080, "TCP")]
    endpoint_slice = _single(load_text, """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-abc, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.1], conditions: {ready: false}, hints: {forZones: [{name: a}]}}
- {addresses: [10.0.0.2]}
ports: [{name: http, port: 9080}, {name: all}]
""").view_as(EndpointSlice)
    assert endpoint_slice.address_type == "IPv4"
    assert [(e.addresses, e.conditions.ready if e.conditions else None) for e in endpoint_slice.endpoints] == [
        (("10.0.0.1",), False), (("10.0.0.2",), None)]
    assert [(p.name, p.port) for p in endpoint_slice.ports] == [("http", 9080), ("all", None)]


@pytest.mark.parametrize("kind", ["Service", "Endpoints", "EndpointSlice", "Pod", "Deployment", "Namespace",
                                  "ServiceAccount"])
def test_every_kubernetes_kind_has_a_view(kind: str) -> None:
    info = next(info for (group, name), info in KINDS.items() if name == kind)
    assert info.spec.__module__ == "meshctl.config.kinds.kubernetes"
    assert info.schema is info.spec.SCHEMA


def test_a_service_port_number_repeats_only_with_another_protocol(load_text: Load) -> None:
    """The API server refuses a (port, protocol) pair defined twice; 53/UDP next to 53/TCP is fine."""
    file, result = load_text("""apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  ports:
  - {name: http, port: 9080}
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53}
  - {name: web, port: 9080, protocol: TCP}
""")
    assert [str(problem) for problem in result.problems] == [
        f"{file}:9: Service default/reviews: spec.ports[3].port: duplicate port 9080/TCP: ports[0] already defines it "
        "(a port number may repeat only with another protocol)"]
    assert not result.resources
