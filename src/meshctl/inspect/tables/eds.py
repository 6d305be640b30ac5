"""`proxy-config eds`: endpoints from the EDS section of a config dump (`configdump/endpoint.go`).

Unlike `endpoints` (Envoy's `/clusters`), this shows what the control plane sent: health as
pushed, and locality.
"""

from __future__ import annotations

from typing import Any

from meshctl.inspect.configdump import ConfigDump
from meshctl.inspect.gostd import equal_fold
from meshctl.inspect.tables.endpoints import EndpointFilter
from meshctl.inspect.tables.enums import enum_name, enum_string
from meshctl.inspect.tables.subsetkey import sort_by_cluster_name
from meshctl.inspect.tabwriter import tabulate

__all__ = ["eds_table", "endpoint_address", "filtered_assignments"]


def filtered_assignments(dump: ConfigDump, endpoint_filter: EndpointFilter) -> list[Any]:
    """ClusterLoadAssignments keeping only matching endpoints, dropping those left with none,
    ordered by cluster name like the clusters table."""
    assignments = []
    for assignment in dump.endpoint_configs():
        kept = 0
        for locality in assignment.endpoints:
            matching = [
                endpoint for endpoint in locality.lb_endpoints if _matches(endpoint_filter, endpoint, assignment)
            ]
            del locality.lb_endpoints[:]
            locality.lb_endpoints.extend(matching)
            kept += len(matching)
        if kept:
            assignments.append(assignment)
    sort_by_cluster_name(assignments, lambda assignment: assignment.cluster_name)
    return assignments


def eds_table(dump: ConfigDump, endpoint_filter: EndpointFilter, prefixed: bool = False) -> str:
    """NAME / STATUS / LOCALITY / CLUSTER; `prefixed` is the `proxy-config all` form (`endpoint/`)."""
    from envoy.config.core.v3.health_check_pb2 import HealthStatus

    lines = ["NAME\tSTATUS\tLOCALITY\tCLUSTER\n"]
    for assignment in filtered_assignments(dump, endpoint_filter):
        for locality in assignment.endpoints:
            where = _describe_locality(locality)
            for endpoint in locality.lb_endpoints:
                name = endpoint_address(endpoint)
                if prefixed:
                    name = f"endpoint/{name}"
                status = enum_string(HealthStatus, endpoint.health_status)
                lines.append(f"{name}\t{status}\t{where}\t{assignment.cluster_name}\n")
    return tabulate("".join(lines), padding=5)


def endpoint_address(endpoint: Any) -> str:
    """`addr:port`, a pipe path, `envoy://listener/id`; additional addresses follow, comma-joined."""
    addresses = [endpoint.endpoint.address, *(extra.address for extra in endpoint.endpoint.additional_addresses)]
    return ",".join(_describe_address(address) for address in addresses)


def _describe_address(address: Any) -> str:
    kind = address.WhichOneof("address")
    if kind == "socket_address":
        return f"{address.socket_address.address}:{address.socket_address.port_value}"
    if kind == "pipe":
        return address.pipe.path
    if kind == "envoy_internal_address" and address.envoy_internal_address.server_listener_name:
        internal = address.envoy_internal_address
        return f"envoy://{internal.server_listener_name}/{internal.endpoint_id}"
    return "unknown"


def _describe_locality(locality: Any) -> str:
    """`region[/zone[/subzone]]`, as Istio's `LocalityToString`."""
    if not locality.HasField("locality"):
        return ""
    where = locality.locality
    text = where.region
    if where.zone:
        text += f"/{where.zone}"
        if where.sub_zone:
            text += f"/{where.sub_zone}"
    return text


def _matches(endpoint_filter: EndpointFilter, endpoint: Any, assignment: Any) -> bool:
    from envoy.config.core.v3.health_check_pb2 import HealthStatus

    if endpoint_filter.address and not equal_fold(endpoint_address(endpoint), endpoint_filter.address):
        return False
    if endpoint_filter.port and endpoint.endpoint.address.socket_address.port_value != endpoint_filter.port:
        return False
    if endpoint_filter.cluster and not equal_fold(assignment.cluster_name, endpoint_filter.cluster):
        return False
    return not endpoint_filter.status or equal_fold(
        enum_name(HealthStatus, endpoint.health_status), endpoint_filter.status
    )
