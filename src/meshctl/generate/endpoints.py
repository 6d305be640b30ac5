"""EDS: a ClusterLoadAssignment per EDS cluster, with Istio's endpoint metadata and localities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from meshctl.generate import names, policy
from meshctl.generate.context import ProxyContext
from meshctl.model.service import Endpoint, Service
from meshctl.model.snapshot import DISABLE


def build_endpoints(ctx: ProxyContext, clusters: Sequence[cluster_pb2.Cluster]) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """One assignment per EDS cluster, named by its `service_name`."""
    by_host: dict[str, Service] = {service.hostname: service for service in ctx.scope.services}
    out = []
    for cluster in clusters:
        if cluster.type != cluster_pb2.Cluster.EDS:
            continue
        name = cluster.eds_cluster_config.service_name or cluster.name
        out.append(assignment(ctx, name, by_host))
    return out


def assignment(ctx: ProxyContext, cluster_name: str, by_host: Mapping[str, Service]) -> endpoint_pb2.ClusterLoadAssignment:
    """The endpoints of `outbound|PORT|SUBSET|HOST`; unknown names get an empty assignment."""
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name)
    parsed = names.parse_cluster(cluster_name)
    if parsed is None:
        return cla
    _, number, subset_name, host = parsed
    service = by_host.get(host)
    port = service.port(number) if service else None
    if service is None or port is None:
        return cla
    rule = ctx.rule_for(service)
    labels: Mapping[str, str] = {}
    traffic = policy.for_port(rule.traffic_policy if rule else None, number)
    if subset_name:
        subset = rule.subset(subset_name) if rule else None
        if subset is None:
            return cla
        labels = subset.get("labels") or {}
        traffic = policy.for_subset(traffic, subset.get("trafficPolicy"), number)
    tls_mode = ((traffic or {}).get("tls") or {}).get("mode")
    groups: dict[str, list[Endpoint]] = {}
    for endpoint in ctx.snapshot.registry.endpoints(service, port):
        if labels and not all(endpoint.labels.get(k) == v for k, v in labels.items()):
            continue
        groups.setdefault(endpoint.locality, []).append(endpoint)
    for locality in sorted(groups):
        group = cla.endpoints.add()
        _set_locality(group, locality)
        total = 0
        for endpoint in groups[locality]:
            lb = group.lb_endpoints.add()
            socket = lb.endpoint.address.socket_address
            socket.address = endpoint.address
            socket.port_value = endpoint.port
            lb.health_status = health_check_pb2.HEALTHY
            _endpoint_metadata(ctx, lb, endpoint, tls_mode)
            lb.load_balancing_weight.value = endpoint.weight
            total += endpoint.weight
        group.load_balancing_weight.value = total
    return cla


def _set_locality(group: endpoint_pb2.LocalityLbEndpoints, label: str) -> None:
    group.locality.SetInParent()
    parts = label.split("/") if label else []
    if len(parts) > 0:
        group.locality.region = parts[0]
    if len(parts) > 1:
        group.locality.zone = parts[1]
    if len(parts) > 2:
        group.locality.sub_zone = parts[2]


def _uses_mtls(ctx: ProxyContext, endpoint: Endpoint, tls_mode: str | None) -> bool:
    """`tlsMode: istio` only for injected endpoints that the client will really talk mTLS to."""
    if not endpoint.injected:
        return False
    if tls_mode is not None:
        return tls_mode == "ISTIO_MUTUAL"
    workload = endpoint.workload
    if workload is None:
        return True
    return ctx.snapshot.mtls_mode(workload.namespace, workload.labels, endpoint.port) != DISABLE


def _endpoint_metadata(ctx: ProxyContext, lb: Any, endpoint: Endpoint, tls_mode: str | None) -> None:
    metadata = lb.metadata.filter_metadata
    if _uses_mtls(ctx, endpoint, tls_mode):
        metadata["envoy.transport_socket_match"].fields["tlsMode"].string_value = "istio"
    workload = endpoint.workload
    if workload is None:
        return
    revision = workload.canonical_revision
    value = ";".join(
        (workload.owner, workload.namespace, workload.canonical_name,
         "" if revision == "latest" else revision, ctx.mesh.cluster_id)
    )
    metadata["istio"].fields["workload"].string_value = value
