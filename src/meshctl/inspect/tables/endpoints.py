"""`proxy-config endpoints`: istioctl's endpoint summary from Envoy's `/clusters?format=json`
(`envoy/clusters/clusters.go`): health as Envoy sees it, including outlier detection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from meshctl.inspect.gosort import sort_slice
from meshctl.inspect.gostd import equal_fold
from meshctl.inspect.tables.enums import enum_name
from meshctl.inspect.tabwriter import tabulate

__all__ = ["EndpointFilter", "endpoints_table", "matching_cluster_statuses"]


@dataclass(frozen=True)
class EndpointFilter:
    """Exact, case-insensitive address, cluster name and health status name; exact port.

    The same filter serves the `eds` table, where istioctl compares the address *with* its port
    (`10.0.0.1:8080`); a bare IP matches nothing there.
    """

    address: str = ""
    port: int = 0
    cluster: str = ""
    status: str = ""


class _HostRow(NamedTuple):
    address: str
    port: int
    cluster: str
    status: str
    outlier: str


def endpoints_table(clusters: Any, endpoint_filter: EndpointFilter) -> str:
    """ENDPOINT / STATUS / OUTLIER CHECK / CLUSTER, ordered by address, port, cluster."""
    rows = [_row(status.name, host) for status in clusters.cluster_statuses for host in status.host_statuses]
    rows = [row for row in rows if _matches(endpoint_filter, row)]
    sort_slice(
        rows, lambda left, right: (left.address, left.port, left.cluster) < (right.address, right.port, right.cluster)
    )
    lines = ["ENDPOINT\tSTATUS\tOUTLIER CHECK\tCLUSTER\n"]
    for row in rows:
        endpoint = f"{row.address}:{row.port}" if row.port else row.address
        lines.append(f"{endpoint}\t{row.status}\t{row.outlier}\t{row.cluster}\n")
    return tabulate("".join(lines), padding=5)


def matching_cluster_statuses(clusters: Any, endpoint_filter: EndpointFilter) -> list[Any]:
    """Clusters with at least one matching host, whole and in Envoy's order (the JSON output)."""
    return [
        status
        for status in clusters.cluster_statuses
        if any(_matches(endpoint_filter, _row(status.name, host)) for host in status.host_statuses)
    ]


def _row(cluster: str, host: Any) -> _HostRow:
    from envoy.config.core.v3.health_check_pb2 import HealthStatus

    address = host.address
    kind = address.WhichOneof("address")
    port = 0
    if kind == "socket_address":
        text = address.socket_address.address
        port = address.socket_address.port_value
    elif kind == "pipe":
        text = f"unix://{address.pipe.path}"
    elif kind == "envoy_internal_address" and address.envoy_internal_address.server_listener_name:
        internal = address.envoy_internal_address
        text = f"envoy://{internal.server_listener_name}/{internal.endpoint_id}"
    else:
        text = "unknown"
    status = enum_name(HealthStatus, host.health_status.eds_health_status)
    outlier = "FAILED" if host.health_status.failed_outlier_check else "OK"
    return _HostRow(text, port, cluster, status, outlier)


def _matches(endpoint_filter: EndpointFilter, row: _HostRow) -> bool:
    if endpoint_filter.address and not equal_fold(row.address, endpoint_filter.address):
        return False
    if endpoint_filter.port and row.port != endpoint_filter.port:
        return False
    if endpoint_filter.cluster and not equal_fold(row.cluster, endpoint_filter.cluster):
        return False
    return not endpoint_filter.status or equal_fold(row.status, endpoint_filter.status)
