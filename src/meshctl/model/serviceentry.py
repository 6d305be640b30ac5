"""Istio's own registry objects as the mesh model sees them: each ServiceEntry host becomes a
Service, and each WorkloadEntry (a WorkloadEntry object, or one written inline as a
ServiceEntry endpoint) becomes a Workload, built in one place for translation and analysis."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from meshctl import protocols
from meshctl.config.kinds.networking import ServiceEntry, WorkloadEntry
from meshctl.config.resource import Resource
from meshctl.model.selectors import export_set
from meshctl.model.service import (
    CLIENT_SIDE_LB,
    DNS_LB,
    DNS_ROUND_ROBIN,
    PASSTHROUGH,
    WILDCARD_ADDRESS,
    WORKLOAD_ENTRY,
    Service,
    ServicePort,
    Workload,
)

__all__ = ["entry_services", "workload_entry"]

_RESOLUTIONS = {
    "NONE": PASSTHROUGH,
    "STATIC": CLIENT_SIDE_LB,
    "DNS": DNS_LB,
    "DNS_ROUND_ROBIN": DNS_ROUND_ROBIN,
}


def workload_entry(resource: Resource) -> Workload:
    """A WorkloadEntry object. Its metadata labels are merged over its spec's labels, as Istio's
    ConvertWorkloadEntry does; an entry naming no service account runs as `default`, since it
    may be a proxy of its own (a VM's sidecar) that needs an identity."""
    spec = resource.view_as(WorkloadEntry)
    return _workload(spec, resource, {**spec.labels, **resource.labels}, spec.service_account or "default")


def _workload(entry: WorkloadEntry, source: Resource, labels: Mapping[str, str], service_account: str) -> Workload:
    """The one reading of a WorkloadEntry, whether a WorkloadEntry object or a ServiceEntry
    endpoint: `source` is the object it was written in, and names the workload."""
    return Workload(
        name=source.name,
        namespace=source.namespace,
        ip=entry.address,
        labels=labels,
        service_account=service_account,
        owner=source.name,
        source=source,
        ports=dict(entry.ports),
        injected=labels.get("security.istio.io/tlsMode") == "istio",
        locality=entry.locality.replace(".", "/"),
        weight=entry.weight or 1,
        kind=WORKLOAD_ENTRY,
        network=entry.network,
    )


def entry_services(entry: Resource, default_export_to: Sequence[str] = ("*",)) -> Iterator[Service]:
    """One Service per host of a ServiceEntry, sharing its ports and its inline endpoints.

    An unset `resolution` is NONE and an unset `location` MESH_EXTERNAL, as in Istio; an
    unset `exportTo` is the mesh's defaultServiceExportTo.
    """
    spec = entry.view_as(ServiceEntry)
    ports = tuple(
        ServicePort(name=p.name, port=p.number, protocol=protocols.parse(p.protocol), target_port=p.target_port or None)
        for p in spec.ports
    )
    inline = tuple(_workload(endpoint, entry, endpoint.labels, endpoint.service_account) for endpoint in spec.endpoints)
    for host in spec.hosts:
        yield Service(
            hostname=host,
            namespace=entry.namespace,
            name=entry.name,
            ports=ports,
            address=spec.addresses[0] if spec.addresses else WILDCARD_ADDRESS,
            resolution=_RESOLUTIONS.get(spec.resolution or "NONE", PASSTHROUGH),
            source=entry,
            export_to=export_set(spec.export_to or default_export_to, entry.namespace),
            selector=(spec.workload_selector.labels if spec.workload_selector else None) or None,
            mesh_external=spec.location != "MESH_INTERNAL",
            subject_alt_names=spec.subject_alt_names,
            from_kubernetes=False,
            inline_workloads=inline,
        )
