"""Which addresses serve one port of one service, derived as Istio derives them.

A Kubernetes Service takes its endpoints from its Endpoints or EndpointSlice objects when the
input has them, and otherwise from the workloads its selector picks (what the endpoints
controller would have written); a ServiceEntry from its inline endpoints and the workloads its
workloadSelector picks. The registry caches the result per service port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from meshctl.config.kinds.kubernetes import EndpointConditions, Endpoints, EndpointSlice, ObjectReference
from meshctl.config.resource import Resource
from meshctl.model.service import (
    DRAINING,
    HEALTHY,
    TERMINATING,
    UNHEALTHY,
    WORKLOAD_ENTRY,
    Endpoint,
    Service,
    ServicePort,
    Workload,
)

__all__ = ["from_endpoint_objects", "from_entry", "from_selected", "sent", "slice_health", "target_port"]


def from_selected(service: Service, port: ServicePort, workloads: Iterable[Workload]) -> Iterator[Endpoint]:
    """A Kubernetes Service's endpoints from the workloads its selector picks: ready ones (all,
    with publishNotReadyAddresses) that have the target port."""
    for workload in workloads:
        if not workload.ready and not service.publish_not_ready:
            continue
        target = target_port(port, workload)
        if target is None:
            continue
        yield Endpoint(workload.ip, target, workload.labels, workload)


def from_endpoint_objects(service: Service, port: ServicePort, objects: Iterable[Resource],
                          pod_named: Callable[[str], Workload | None],
                          ready_at: Callable[[str, str], Workload | None]) -> Iterator[Endpoint]:
    """A Kubernetes Service's endpoints as its Endpoints and EndpointSlices list them, with
    istiod's rules: FQDN slices are skipped; an address's workload is the pod its targetRef
    names (`pod_named("NAME.NS")`), and an address whose pod is missing is left out (istiod
    waits for the pod: without it the endpoint has no labels, account or locality); without a
    targetRef, the ready pod of the namespace at that address (`ready_at(namespace, ip)`), if
    any. Each endpoint's health comes from its conditions, and only what istiod sends is kept."""

    def endpoints_at(address: str, reference: ObjectReference | None, number: int, health: str) -> Iterator[Endpoint]:
        if reference is not None and reference.kind == "Pod":
            workload = pod_named(f"{reference.name}.{reference.namespace or service.namespace}")
            if workload is None:
                return
        else:
            workload = ready_at(service.namespace, address)
        yield Endpoint(address, number, workload.labels if workload else {}, workload, health)

    for obj in objects:
        if obj.kind == "Endpoints":
            for subset in obj.view_as(Endpoints).subsets:
                number = _named_port([(p.name, p.port) for p in subset.ports], port)
                if number is None:
                    continue
                addresses = subset.addresses + (subset.not_ready_addresses if service.publish_not_ready else ())
                for address in addresses:
                    yield from endpoints_at(address.ip, address.target_ref, number, HEALTHY)
        else:
            endpoint_slice = obj.view_as(EndpointSlice)
            if endpoint_slice.address_type == "FQDN":
                continue
            number = _named_port([(p.name, p.port) for p in endpoint_slice.ports], port)
            if number is None:
                continue
            for item in endpoint_slice.endpoints:
                health = slice_health(item.conditions, service)
                if not sent(health, service):
                    continue
                for ip in item.addresses:
                    yield from endpoints_at(ip, item.target_ref, number, health)


def slice_health(conditions: EndpointConditions | None, service: Service) -> str:
    """istiod's `endpointHealthStatus`: ready (or unknown) is healthy; otherwise a serving,
    terminating endpoint of a persistent-session service is draining, a terminating one is
    terminating, anything else is unhealthy (an unset condition counts as true)."""
    ready, serving, terminating = (
        (conditions.ready, conditions.serving, conditions.terminating) if conditions is not None else (None, None, None)
    )
    if ready is not False:
        return HEALTHY
    if service.persistent_session and serving is not False and terminating is not False:
        return DRAINING
    if terminating is not False:
        return TERMINATING
    return UNHEALTHY


def sent(health: str, service: Service) -> bool:
    """Whether EDS carries an endpoint of that health (istiod's `filterIstioEndpoint`):
    terminating never; unhealthy only when the service's trafficDistribution needs the health
    to spill over; draining only to keep a persistent session."""
    if health == UNHEALTHY:
        return service.send_unhealthy
    if health == DRAINING:
        return service.persistent_session
    return health == HEALTHY


def from_entry(service: Service, port: ServicePort, selected: Iterable[Workload]) -> Iterator[Endpoint]:
    """A ServiceEntry's endpoints: its inline ones (those with an address), then the workloads
    its workloadSelector picks. A WorkloadEntry may map the port by name to another number."""
    default_target = port.target_port if isinstance(port.target_port, int) else port.port
    for workload in (*(w for w in service.inline_workloads if w.ip), *selected):
        target = workload.ports.get(port.name, default_target) if workload.kind == WORKLOAD_ENTRY else default_target
        yield Endpoint(workload.ip, target, workload.labels, workload)


def _named_port(ports: Sequence[tuple[str, int | None]], service_port: ServicePort) -> int | None:
    """The endpoint port that serves `service_port`: matched by name (unnamed if single)."""
    for name, number in ports:
        if name == service_port.name:
            return number
    if len(ports) == 1 and not service_port.name:
        return ports[0][1]
    return None


def target_port(port: ServicePort, workload: Workload) -> int | None:
    """The workload port a Kubernetes Service port sends to: `targetPort` as a number, or by
    name among the pod's container ports (a WorkloadEntry maps the service port's name); None
    when the workload has no port of that name."""
    target = port.target_port
    if target is None:
        return port.port
    if isinstance(target, int):
        return target
    if workload.kind == WORKLOAD_ENTRY:
        return workload.ports.get(port.name, port.port)
    return workload.ports.get(target)
