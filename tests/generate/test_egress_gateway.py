"""Istio's egress gateway task (tasks/traffic-management/egress/egress-gateway): traffic to
edition.cnn.com leaves the mesh through the egress gateway. One VirtualService binds both the
sidecars (`mesh`) and the gateway, each of its rules to one of them by `match.gateways`: a
sidecar routes the host to the gateway's Service (subset `cnn` of its DestinationRule), the
gateway routes it on to the ServiceEntry's host."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from envoy.config.route.v3 import route_pb2

from meshctl.generate.proxy import ProxyConfig
from meshctl.model.snapshot import MeshSnapshot

TASK = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  template:
    metadata: {labels: {istio: egressgateway, app: istio-egressgateway}}
    spec: {serviceAccountName: istio-egressgateway-service-account, containers: [{name: istio-proxy, image: proxyv2}]}
---
apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}, {name: https, port: 443, targetPort: 8443}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep, namespace: default}
spec:
  selector: {matchLabels: {app: sleep}}
  template:
    metadata: {labels: {app: sleep}}
    spec: {serviceAccountName: sleep, containers: [{name: sleep, image: curl}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn, namespace: default}
spec:
  hosts: [edition.cnn.com]
  ports: [{number: 80, name: http-port, protocol: HTTP}, {number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [edition.cnn.com]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-cnn, namespace: default}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{name: cnn}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-cnn-through-egress-gateway, namespace: default}
spec:
  hosts: [edition.cnn.com]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{gateways: [mesh], port: 80}]
    route:
    - destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: cnn, port: {number: 80}}
      weight: 100
  - match: [{gateways: [istio-egressgateway], port: 80}]
    route:
    - destination: {host: edition.cnn.com, port: {number: 80}}
      weight: 100
"""


def _routes(config: ProxyConfig, name: str) -> route_pb2.RouteConfiguration:
    return next(route for route in config.routes if route.name == name)


def _clusters_for(routes: route_pb2.RouteConfiguration, host: str) -> list[str]:
    vhost = next(v for v in routes.virtual_hosts if host in v.domains)
    return [route.route.cluster or route.route.weighted_clusters.clusters[0].name for route in vhost.routes]


def test_a_sidecar_sends_the_host_to_the_egress_gateway(mesh: Callable[..., MeshSnapshot],
                                                      config_for: Callable[..., ProxyConfig],
                                                      write_yaml: Callable[[str], Path]) -> None:
    snapshot = mesh(write_yaml(TASK))
    sleep = config_for(snapshot, "deploy/sleep.default")
    assert _clusters_for(_routes(sleep, "80"), "edition.cnn.com") == [
        "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local"]
    assert "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local" in {c.name for c in sleep.clusters}


def test_the_egress_gateway_sends_it_out(mesh: Callable[..., MeshSnapshot], config_for: Callable[..., ProxyConfig],
                                         write_yaml: Callable[[str], Path]) -> None:
    snapshot = mesh(write_yaml(TASK))
    gateway = config_for(snapshot, "deploy/istio-egressgateway.istio-system")
    assert [listener.name for listener in gateway.listeners] == ["0.0.0.0_8080"]
    routes = _routes(gateway, "http.8080")
    assert [vhost.name for vhost in routes.virtual_hosts] == ["edition.cnn.com:80"]
    assert _clusters_for(routes, "edition.cnn.com") == ["outbound|80||edition.cnn.com"]
    cluster = next(c for c in gateway.clusters if c.name == "outbound|80||edition.cnn.com")
    assert cluster.cluster_type.name == "envoy.clusters.dns"  # STRICT_DNS, as plain Envoy takes it
    assert "PassthroughCluster" not in {c.name for c in gateway.clusters}


def test_the_mesh_rule_never_reaches_the_gateway_and_back(mesh: Callable[..., MeshSnapshot],
                                                         config_for: Callable[..., ProxyConfig],
                                                         write_yaml: Callable[[str], Path]) -> None:
    """Each rule applies where its `match.gateways` says: the gateway would loop to itself
    if it took the mesh rule, and the sidecar would skip the gateway with the other."""
    snapshot = mesh(write_yaml(TASK))
    sleep = _clusters_for(_routes(config_for(snapshot, "deploy/sleep.default"), "80"), "edition.cnn.com")
    gateway = _clusters_for(_routes(config_for(snapshot, "deploy/istio-egressgateway.istio-system"), "http.8080"),
                            "edition.cnn.com")
    assert "outbound|80||edition.cnn.com" not in sleep
    assert not any("istio-egressgateway" in cluster for cluster in gateway)
