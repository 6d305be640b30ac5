"""EDS from a cluster's objects: health from EndpointSlice conditions, locality from the node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from envoy.config.core.v3 import health_check_pb2

from meshctl.generate.proxy import ProxyConfig
from meshctl.model.snapshot import MeshSnapshot

CLUSTER = "outbound|80||web.default.svc.cluster.local"

MESH = """
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {topology.kubernetes.io/region: eu-west1, topology.kubernetes.io/zone: eu-west1-b}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
  trafficDistribution: PreferClose
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: app}]}
status: {podIP: 10.0.9.9}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {containers: [{name: app}], nodeName: node-a}
status: {podIP: 10.0.0.1, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec: {containers: [{name: app}], nodeName: node-a}
status: {podIP: 10.0.0.2, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.1], targetRef: {kind: Pod, name: web-1}}
- {addresses: [10.0.0.2], conditions: {ready: false, terminating: false}, targetRef: {kind: Pod, name: web-2}}
ports: [{name: http, port: 8080}]
"""


def test_unhealthy_endpoints_of_a_traffic_distribution_service_go_out_marked_unhealthy(
    mesh: Callable[..., MeshSnapshot], config_for: Callable[..., ProxyConfig], write_yaml: Callable[[str], Path]
) -> None:
    config = config_for(mesh(write_yaml(MESH)), "client.default")
    (assignment,) = [cla for cla in config.endpoints if cla.cluster_name == CLUSTER]
    (group,) = assignment.endpoints
    assert (group.locality.region, group.locality.zone) == ("eu-west1", "eu-west1-b")
    health = {lb.endpoint.address.socket_address.address: lb.health_status for lb in group.lb_endpoints}
    assert health == {"10.0.0.1": health_check_pb2.HEALTHY, "10.0.0.2": health_check_pb2.UNHEALTHY}
