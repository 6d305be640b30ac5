"""A stand-in translator for the server tests: real Envoy resources for a tiny mesh.

Pods are the workload registry; a Pod's annotations say which port its listener binds on and
which host it calls. Each Service plus its Endpoints becomes an EDS Cluster and a
ClusterLoadAssignment; a VirtualService for the called host picks the (weighted) clusters.
A Service annotation sets the cluster's connect_timeout, which lets a test make Envoy NACK
(a negative timeout). It is deliberately tiny; the real translator lives elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from meshctl.config.kinds import KINDS
from meshctl.config.resource import Origin, Resource
from meshctl.config.values import parse_duration, split_nanos
from meshctl.errors import GenerationError, UnknownProxyError
from meshctl.model.node import parse_node
from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, Packed, ProxyResources

LISTENER_PORT = "test.meshctl.io/listener-port"
UPSTREAM = "test.meshctl.io/upstream"
CONNECT_TIMEOUT = "test.meshctl.io/connect-timeout"
# A translator bug injected by a test: generating the config of a Pod annotated so fails, naming
# the Pod as the object being translated (as the real translator names the objects it was on).
FAIL_GENERATION = "test.meshctl.io/fail-generation"


def cluster_name(service: str, namespace: str = "default") -> str:
    return f"outbound|80||{service}.{namespace}.svc.cluster.local"


def _ads() -> config_source_pb2.ConfigSource:
    """ADS as Istio points at it, waiting for a resource for as long as it takes (no initial fetch
    timeout): a cluster or listener the server fails to complete stays warming, visibly."""
    source = config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource(), resource_api_version=config_source_pb2.V3)
    source.initial_fetch_timeout.SetInParent()
    return source


def _cluster(service: Resource) -> Packed:
    name = cluster_name(service.name, service.namespace)
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    cluster.eds_cluster_config.eds_config.CopyFrom(_ads())
    seconds, nanos = split_nanos(parse_duration(service.annotations.get(CONNECT_TIMEOUT, "1s")) or 0)
    cluster.connect_timeout.seconds, cluster.connect_timeout.nanos = seconds, nanos
    return Packed.of(name, cluster)


def _load_assignment(name: str, endpoints: Resource | None) -> Packed:
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    locality = assignment.endpoints.add()
    for subset in (endpoints.spec.get("subsets", []) if endpoints else []):
        for address in subset.get("addresses", []):
            for port in subset.get("ports", []):
                lb = locality.lb_endpoints.add()
                lb.endpoint.address.CopyFrom(
                    address_pb2.Address(socket_address=address_pb2.SocketAddress(address=address["ip"], port_value=port["port"]))
                )
    return Packed.of(name, assignment)


def _route_action(host: str, namespace: str, services: Mapping[tuple[str, str], Resource],
                  virtual_services: Sequence[Resource]) -> route_components_pb2.RouteAction:
    for vs in virtual_services:
        if host in vs.spec.get("hosts", []) and vs.spec.get("http"):
            destinations = vs.spec["http"][0].get("route", [])
            if len(destinations) == 1:
                return route_components_pb2.RouteAction(cluster=cluster_name(destinations[0]["destination"]["host"], vs.namespace))
            action = route_components_pb2.RouteAction()
            for destination in destinations:
                action.weighted_clusters.clusters.add(
                    name=cluster_name(destination["destination"]["host"], vs.namespace)
                ).weight.value = destination.get("weight", 0)
            return action
    return route_components_pb2.RouteAction(cluster=cluster_name(host, namespace))


def _listener(port: int) -> Packed:
    manager = hcm_pb2.HttpConnectionManager(stat_prefix=f"inbound_{port}")
    manager.rds.config_source.CopyFrom(_ads())
    manager.rds.route_config_name = f"route-{port}"
    manager.http_filters.add(name="envoy.filters.http.router").typed_config.Pack(router_pb2.Router())
    listener = listener_pb2.Listener(name=f"listener-{port}")
    listener.address.socket_address.address = "127.0.0.1"
    listener.address.socket_address.port_value = port
    chain = listener.filter_chains.add()
    hcm = chain.filters.add(name="envoy.filters.network.http_connection_manager")
    hcm.typed_config.Pack(manager)
    return Packed.of(listener.name, listener)


def _route(port: int, action: route_components_pb2.RouteAction) -> Packed:
    config = route_pb2.RouteConfiguration(name=f"route-{port}")
    host = config.virtual_hosts.add(name="all", domains=["*"])
    route = host.routes.add()
    route.match.prefix = "/"
    route.route.CopyFrom(action)
    return Packed.of(config.name, config)


class FakeMesh:
    """One generation; shared clusters and endpoints are packed once for every proxy."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.version = hashlib.blake2b(
            "".join(sorted(f"{r.kind}/{r.namespace}/{r.name}@{r.revision};" for r in resources)).encode(), digest_size=8
        ).hexdigest()
        by_kind: dict[str, dict[tuple[str, str], Resource]] = {}
        for resource in resources:
            by_kind.setdefault(resource.kind, {})[(resource.namespace, resource.name)] = resource
        self.pods = {f"{name}.{ns}": pod for (ns, name), pod in by_kind.get("Pod", {}).items()}
        self.services = by_kind.get("Service", {})
        endpoints = by_kind.get("Endpoints", {})
        self.virtual_services = sorted(by_kind.get("VirtualService", {}).values(), key=lambda r: (r.namespace, r.name))
        self.clusters = {p.name: p for p in (_cluster(s) for s in self.services.values())}
        self.endpoints = {
            cluster_name(name, ns): _load_assignment(cluster_name(name, ns), endpoints.get((ns, name)))
            for (ns, name) in self.services
        }
        self._per_proxy: dict[str, ProxyResources] = {}
        self._origins: dict[str, list[Resource]] = {}
        for (ns, name), service in self.services.items():
            self._origins[cluster_name(name, ns)] = [service, *([endpoints[(ns, name)]] if (ns, name) in endpoints else [])]

    def resources_for(self, node: base_pb2.Node) -> ProxyResources:
        proxy = parse_node(node)
        pod = self.pods.get(proxy.id)
        if pod is None:
            raise UnknownProxyError(f"no Pod {proxy.id} in the registry")
        if FAIL_GENERATION in pod.annotations:
            raise GenerationError(pod.annotations[FAIL_GENERATION], [f"{pod.where()}: {pod.ref()}"])
        if proxy.id not in self._per_proxy:
            port = int(pod.annotations[LISTENER_PORT])
            action = _route_action(pod.annotations.get(UPSTREAM, ""), pod.namespace, self.services, self.virtual_services)
            listener, route = _listener(port), _route(port, action)
            self._origins[listener.name] = [pod]
            self._origins[route.name] = [pod, *self.virtual_services]
            self._per_proxy[proxy.id] = {
                CLUSTER: self.clusters,
                ENDPOINT: self.endpoints,
                LISTENER: {listener.name: listener},
                ROUTE: {route.name: route},
            }
        return self._per_proxy[proxy.id]


    def origins(self, resource: Packed) -> list[str]:
        return [f"{r.where()}: {r.ref()}" for r in self._origins.get(resource.name, [])]


def translate(resources: Sequence[Resource]) -> FakeMesh:
    return FakeMesh(resources)


# Builders for the tests: the same objects as YAML documents (for directory sources) or as
# `Resource`s (for in-memory sources).

def mesh(*pods: str, services: Mapping[str, int] | None = None, weights: Mapping[str, int] | None = None,
         timeouts: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Documents of a small mesh: pods calling `backend`, services x/y by default, a VirtualService."""
    services = services if services is not None else {"x": 9001, "y": 9002}
    timeouts = timeouts or {}
    docs: list[dict[str, Any]] = [pod(p, 20000 + i, "backend") for i, p in enumerate(pods)]
    for name, port in services.items():
        docs.extend(service(name, port, connect_timeout=timeouts.get(name, "")))
    docs.append(virtual_service("backend", weights or {"x": 100}))
    return docs


def pod(name: str, listener_port: int, upstream: str, namespace: str = "default", fail: str = "") -> dict[str, Any]:
    """A Pod whose sidecar listens on `listener_port` and routes to `upstream`; `fail` makes
    generating its config fail with that message."""
    annotations = {LISTENER_PORT: str(listener_port), UPSTREAM: upstream}
    if fail:
        annotations[FAIL_GENERATION] = fail
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
    }


def service(name: str, backend_port: int, namespace: str = "default", connect_timeout: str = "") -> list[dict[str, Any]]:
    """A Service and its Endpoints (one backend on 127.0.0.1)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if connect_timeout:
        metadata["annotations"] = {CONNECT_TIMEOUT: connect_timeout}
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": namespace},
         "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": backend_port}]}]},
    ]


def virtual_service(host: str, weights: Mapping[str, int], namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": host, "namespace": namespace},
        "spec": {"hosts": [host], "http": [{"route": [{"destination": {"host": h}, "weight": w} for h, w in weights.items()]}]},
    }


def dump_yaml(documents: Sequence[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all(list(documents), sort_keys=False)


def as_resources(documents: Sequence[Mapping[str, Any]]) -> tuple[Resource, ...]:
    """The documents as validated-looking resources, without going through files."""
    out = []
    for doc in documents:
        group, _, version = doc["apiVersion"].rpartition("/")
        info = KINDS[(group, doc["kind"])]
        metadata = doc["metadata"]
        spec = doc.get(info.body, {}) if info.body else {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
        revision = hashlib.blake2b(repr(sorted(doc.items(), key=lambda kv: kv[0])).encode(), digest_size=8).hexdigest()
        out.append(Resource(
            kind=doc["kind"], group=group, version=version, namespace=metadata.get("namespace", "default"),
            name=metadata["name"], spec=spec, origin=Origin("<memory>", 1), revision=revision,
            annotations=metadata.get("annotations", {}), view=info.view_of(spec),
            status_view=info.status_view_of(doc.get("status") or {}),
        ))
    return tuple(out)
