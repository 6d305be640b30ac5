"""Istio's own registry objects as the mesh model sees them: each ServiceEntry host becomes a
Service, and each WorkloadEntry (a WorkloadEntry object, or one written inline as a
ServiceEntry endpoint) becomes a Workload, built in one place for translation and analysis."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshctl import protocols
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
    spec = resource.spec
    labels = {**(spec.get("labels") or {}), **resource.labels}
    return _workload(spec, resource, labels, spec.get("serviceAccount") or "default")


def _workload(entry: Mapping[str, Any], source: Resource, labels: Mapping[str, str], service_account: str) -> Workload:
    """The one reading of a WorkloadEntry spec, whether a WorkloadEntry object or a ServiceEntry
    endpoint: `source` is the object it was written in, and names the workload."""
    return Workload(
        name=source.name,
        namespace=source.namespace,
        ip=entry.get("address", ""),
        labels=labels,
        service_account=service_account,
        owner=source.name,
        source=source,
        ports=dict(entry.get("ports") or {}),
        injected=labels.get("security.istio.io/tlsMode") == "istio",
        locality=(entry.get("locality") or "").replace(".", "/"),
        weight=entry.get("weight") or 1,
        kind=WORKLOAD_ENTRY,
        network=entry.get("network", ""),
    )


def entry_services(entry: Resource) -> Iterator[Service]:
    """One Service per host of a ServiceEntry, sharing its ports and its inline endpoints."""
    spec = entry.spec
    ports = tuple(
        ServicePort(
            name=p.get("name", ""),
            port=p["number"],
            protocol=protocols.parse(p.get("protocol", "")),
            target_port=p.get("targetPort"),
        )
        for p in spec.get("ports") or []
    )
    addresses = spec.get("addresses") or []
    resolution = _RESOLUTIONS.get(spec.get("resolution", "NONE"), PASSTHROUGH)
    inline = tuple(
        _workload(endpoint, entry, endpoint.get("labels") or {}, endpoint.get("serviceAccount", ""))
        for endpoint in spec.get("endpoints") or []
    )
    selector = (spec.get("workloadSelector") or {}).get("labels") or None
    for host in spec.get("hosts") or []:
        yield Service(
            hostname=host,
            namespace=entry.namespace,
            name=entry.name,
            ports=ports,
            address=addresses[0] if addresses else WILDCARD_ADDRESS,
            resolution=resolution,
            source=entry,
            export_to=export_set(spec.get("exportTo"), entry.namespace),
            selector=selector,
            mesh_external=spec.get("location", "MESH_EXTERNAL") != "MESH_INTERNAL",
            subject_alt_names=tuple(spec.get("subjectAltNames") or ()),
            from_kubernetes=False,
            inline_workloads=inline,
        )
