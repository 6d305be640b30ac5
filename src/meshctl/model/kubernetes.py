"""Kubernetes objects as the mesh model sees them: Services become hosts, Pods and Deployment
replicas become workloads (Istio's Kubernetes service registry)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from meshctl import protocols
from meshctl.config.kinds.kubernetes import (
    DeploymentSpec,
    PodSpec,
    PodStatus,
    ServiceSpec,
)
from meshctl.config.resource import Resource
from meshctl.hostnames import kube_fqdn
from meshctl.model import synthetic
from meshctl.model.injection import InjectionPolicy
from meshctl.model.selectors import export_set
from meshctl.model.service import (
    ALIAS,
    CLIENT_SIDE_LB,
    PASSTHROUGH,
    WILDCARD_ADDRESS,
    Service,
    ServicePort,
    Workload,
)

__all__ = ["EXPORT_TO_ANNOTATION", "kubernetes_services", "locality", "pod_workloads"]

EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"
PERSISTENT_SESSION_LABELS = ("istio.io/persistent-session", "istio.io/persistent-session-header")
_LOCALITY_LABELS = ("topology.istio.io/locality", "istio-locality")
_REGION = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
_ZONE = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
_SUBZONE = "topology.istio.io/subzone"


def locality(labels: Mapping[str, str], node: Mapping[str, str] | None = None) -> str:
    """`region/zone/subzone`, as istiod's `getPodLocality`: the workload's locality label
    (`us.east.a` reads as `us/east/a`), else its node's topology labels; without a node (offline
    input), the topology labels of the workload itself."""
    for key in _LOCALITY_LABELS:
        explicit = labels.get(key)
        if explicit:
            return explicit if "/" in explicit else explicit.replace(".", "/")
    source = node if node is not None else labels
    parts = [
        next((source[key] for key in _REGION if source.get(key)), ""),
        next((source[key] for key in _ZONE if source.get(key)), ""),
        source.get(_SUBZONE, ""),
    ]
    while parts and not parts[-1]:
        parts.pop()
    return "/".join(parts)


def pod_workloads(pods: Sequence[Resource], deployments: Sequence[Resource], pool: synthetic.AddressPool,
                  injection: InjectionPolicy, nodes: Mapping[str, Mapping[str, str]] | None = None
                  ) -> Iterator[Workload]:
    """Pods as given (an address made up when the status has none), then each Deployment's
    replicas as its ReplicaSet would create them. `nodes` (name to labels) gives a pod's
    locality; a pod is ready when it runs and is not reported unready."""
    nodes = nodes or {}
    for pod in pods:
        spec, status = pod.view_as(PodSpec), pod.status_as(PodStatus)
        yield Workload(
            name=pod.name,
            namespace=pod.namespace,
            ip=status.pod_ip or pool.allocate("pod", pod.namespace, pod.name),
            labels=dict(pod.labels),
            service_account=spec.account,
            owner=synthetic.owner_of(pod.name),
            source=pod,
            ports=spec.named_ports(),
            injected=injection.injected(pod.namespace, pod.labels, pod.annotations),
            locality=locality(pod.labels, nodes.get(spec.node_name) if spec.node_name else None),
            ready=status.ready,
            annotations=dict(pod.annotations),
        )
    for deployment in deployments:
        yield from _replicas(deployment, pool, injection)


def _replicas(deployment: Resource, pool: synthetic.AddressPool, injection: InjectionPolicy) -> Iterable[Workload]:
    """Each replica as Kubernetes would name it: `<deployment>-<template hash>-<suffix>`."""
    spec = deployment.view_as(DeploymentSpec)
    template = spec.template
    labels = dict(template.metadata.labels) if template.metadata else {}
    annotations = dict(template.metadata.annotations) if template.metadata else {}
    labels.setdefault("pod-template-hash", synthetic.template_hash(deployment.namespace, deployment.name))
    ports = template.spec.named_ports()
    for index in range(spec.replicas):
        yield Workload(
            name=synthetic.replica_name(deployment.namespace, deployment.name, index),
            namespace=deployment.namespace,
            ip=pool.allocate("replica", deployment.namespace, deployment.name, str(index)),
            labels=labels,
            service_account=template.spec.account,
            owner=deployment.name,
            source=deployment,
            ports=ports,
            injected=injection.injected(deployment.namespace, labels, annotations),
            locality=locality(labels),
            annotations=annotations,
        )


def kubernetes_services(services: Sequence[Resource], domain: str,
                        default_export_to: Sequence[str] = ("*",)) -> Iterator[Service]:
    """One host per Service; a Service without a clusterIP gets one from the service network."""
    explicit = [ip for ip in (s.view_as(ServiceSpec).cluster_ip for s in services) if ip not in ("", "None")]
    vips = synthetic.AddressPool(synthetic.SERVICE_NETWORK, explicit)
    for service in services:
        yield _service(service, vips, domain, default_export_to)


def _service(obj: Resource, vips: synthetic.AddressPool, domain: str, default_export_to: Sequence[str]) -> Service:
    spec = obj.view_as(ServiceSpec)
    ports = tuple(
        ServicePort(
            name=p.name,
            port=p.port,
            protocol=protocols.from_kubernetes_port(p.name, p.port, p.protocol, p.app_protocol),
            target_port=p.port if p.target_port is None else p.target_port,
        )
        for p in spec.ports
    )
    resolution = CLIENT_SIDE_LB
    alias_for = ""
    if spec.type == "ExternalName":
        resolution, address, alias_for = ALIAS, WILDCARD_ADDRESS, spec.external_name
    elif spec.cluster_ip == "None":
        resolution, address = PASSTHROUGH, WILDCARD_ADDRESS
    elif spec.cluster_ip:
        address = spec.cluster_ip
    else:
        address = vips.allocate("service", obj.namespace, obj.name)
    annotation = obj.annotations.get(EXPORT_TO_ANNOTATION, "")
    exported = [value.strip() for value in annotation.split(",") if value.strip()] or default_export_to
    return Service(
        hostname=kube_fqdn(obj.name, obj.namespace, domain),
        namespace=obj.namespace,
        name=obj.name,
        ports=ports,
        address=address,
        resolution=resolution,
        source=obj,
        export_to=export_set(exported, obj.namespace),
        selector=spec.selector or None,
        alias_for=alias_for,
        publish_not_ready=spec.publish_not_ready_addresses,
        send_unhealthy=spec.traffic_distribution not in ("", "Any"),
        persistent_session=any(obj.labels.get(label) for label in PERSISTENT_SESSION_LABELS),
    )
