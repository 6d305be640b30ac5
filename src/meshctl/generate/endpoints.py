"""EDS: a ClusterLoadAssignment per EDS cluster, with Istio's endpoint metadata and localities.

A service's endpoints appear in several assignments (the default cluster's and each subset's),
so each endpoint is serialized once, as a piece of a locality group, rendered from the byte
template of its shape (generate.templates) after the first: protobuf messages concatenate at
the byte level, and a group is its locality's piece, its endpoints' pieces and its weight's
piece; an assignment is its name's field and its groups' fields, joined and parsed once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from google.protobuf import wrappers_pb2

from meshctl.generate import names, policy
from meshctl.generate.core import set_address
from meshctl.generate.protobuf import MAX_UINT32
from meshctl.generate.context import ProxyContext
from meshctl.generate.templates import slot
from meshctl.memokeys import Same
from meshctl.model.proxy import DEFAULT_CLUSTER_ID
from meshctl.config.kinds.networking.destination_rule import Subset
from meshctl.model.istio import DestinationRuleView
from meshctl.model.service import Endpoint, Service, ServicePort
from meshctl.model.snapshot import DISABLE
from meshctl.resources.protowire import field, tags

__all__ = ["assignment", "build_endpoints", "services_by_host"]


def build_endpoints(ctx: ProxyContext, clusters: Sequence[cluster_pb2.Cluster]) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """One assignment per EDS cluster, named by its `service_name`."""
    by_host = services_by_host(ctx)
    built = _EndpointCache(ctx)
    # The clusters keep their identity across endpoint changes (see same_list): grouped once.
    groups = ctx.memo(("eds-groups", Same(clusters)), lambda: _eds_groups(clusters))
    shared = (ctx.snapshot.versions_of("PeerAuthentication", "Namespace"), ctx.snapshot.mesh_key)
    out: list[endpoint_pb2.ClusterLoadAssignment] = []
    for host, cluster_names in groups:
        out.extend(ctx.memo_by(lambda: _assignments_key(ctx, host, cluster_names, by_host, shared),
                               lambda: [assignment(ctx, name, by_host, built) for name in cluster_names]))
    return out


def services_by_host(ctx: ProxyContext) -> dict[str, Service]:
    """The services an assignment's cluster name can refer to (of one host, the last imported)."""
    return {service.hostname: service for service in ctx.scope.services}


def _eds_groups(clusters: Sequence[cluster_pb2.Cluster]) -> list[tuple[str, tuple[str, ...]]]:
    """The EDS clusters' service names, grouped by the service host they are named for."""
    groups: dict[str, list[str]] = {}
    for cluster in clusters:
        if cluster.type == cluster_pb2.Cluster.EDS:
            name = cluster.eds_cluster_config.service_name or cluster.name
            parsed = names.parse_cluster(name)
            groups.setdefault(parsed[3] if parsed else "", []).append(name)
    return [(host, tuple(cluster_names)) for host, cluster_names in groups.items()]


def _assignments_key(ctx: ProxyContext, host: str, cluster_names: tuple[str, ...], by_host: Mapping[str, Service],
                     shared: tuple[Any, ...]) -> tuple[Any, ...]:
    """Everything the assignments of one service's clusters depend on (see GenerationCache);
    `shared` is what every service's depend on alike (PeerAuthentications, Namespaces, mesh)."""
    service = by_host.get(host)
    if service is None:
        return ("assignments", cluster_names)
    rule = ctx.rule_for(service)
    return (
        "assignments", cluster_names, service.source.revision,
        tuple(r.revision for r in rule.resources) if rule else None,
        shared, ctx.snapshot.registry.signature(service),
    )


_HEALTH = {name: value for name, value in health_check_pb2.HealthStatus.items()}


class _EndpointCache:
    """Serialized endpoints per (service, port, TLS mode), shared by a service's subset
    clusters, and the traffic policy's TLS mode per (rule, port, subset)."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.entries: dict[tuple[int, int, str | None], list[tuple[Endpoint, bytes]]] = {}
        self.modes: dict[tuple[int, int], str] = {}
        self.tls_modes: dict[tuple[int, int, str], str | None] = {}

    def lb_endpoints(self, service: Service, port: ServicePort, tls_mode: str | None) -> list[tuple[Endpoint, bytes]]:
        """Each endpoint with its bytes as a locality group's `lb_endpoints` entry."""
        key = (id(service), port.port, tls_mode)
        found = self.entries.get(key)
        if found is None:
            found = self.entries[key] = [
                (endpoint, self._lb_endpoint(endpoint, tls_mode))
                for endpoint in self.ctx.snapshot.registry.endpoints(service, port)
            ]
        return found

    def tls_mode(self, rule: DestinationRuleView | None, number: int, subset: Subset | None) -> str | None:
        """The mode of the TLS settings the rule gives the port (and subset), if any."""
        key = (id(rule), number, subset.name if subset else "")
        if key in self.tls_modes:
            return self.tls_modes[key]
        traffic = policy.for_port(rule.traffic_policy if rule else None, number)
        if subset is not None:
            traffic = policy.for_subset(traffic, subset.traffic_policy, number)
        mode = self.tls_modes[key] = traffic.tls.mode if traffic is not None and traffic.tls is not None else None
        return mode

    def _lb_endpoint(self, endpoint: Endpoint, tls_mode: str | None) -> bytes:
        """The endpoint as a locality group holding it alone, rendered from the template of
        its shape (all but its address and its workload's label) after the first."""
        mtls = self._uses_mtls(endpoint, tls_mode)
        workload = endpoint.workload
        label = ""
        if workload is not None:
            revision = workload.canonical_revision
            label = ";".join((workload.owner, workload.namespace, workload.canonical_name,
                              "" if revision == "latest" else revision, DEFAULT_CLUSTER_ID))
        values = (endpoint.address, label)
        shape = None if endpoint.address.startswith("unix://") else (
            "lb-endpoint", endpoint.health, endpoint.port, endpoint.weight, mtls, workload is not None)

        def build(strings: Sequence[str]) -> list[endpoint_components_pb2.LocalityLbEndpoints]:
            return [_lb_endpoint_group(strings[0], endpoint.port, endpoint.health, endpoint.weight, mtls,
                                       strings[1] if workload is not None else None)]

        return self.ctx.templates.serialized(shape, values, _ENDPOINT_MARKS, build)[0]

    def _uses_mtls(self, endpoint: Endpoint, tls_mode: str | None) -> bool:
        """`tlsMode: istio` only for injected endpoints the client will really talk mTLS to."""
        if not endpoint.injected:
            return False
        if tls_mode is not None:
            return tls_mode == "ISTIO_MUTUAL"
        workload = endpoint.workload
        if workload is None:
            return True
        key = (id(workload), endpoint.port)
        mode = self.modes.get(key)
        if mode is None:
            mode = self.modes[key] = self.ctx.snapshot.mtls_mode(workload.namespace, workload.labels, endpoint.port)
        return mode != DISABLE


_ENDPOINT_MARKS = (slot(0), slot(1))


def _lb_endpoint_group(address: str, port: int, health: str, weight: int, mtls: bool,
                       workload: str | None) -> endpoint_components_pb2.LocalityLbEndpoints:
    """A locality group holding one endpoint, as Istio describes it: `tlsMode: istio` for an
    mTLS peer, and its workload's `owner;namespace;name;revision;cluster` label."""
    group = endpoint_components_pb2.LocalityLbEndpoints()
    lb = group.lb_endpoints.add(health_status=_HEALTH[health])
    set_address(lb.endpoint.address, address, port)
    metadata = lb.metadata.filter_metadata
    if mtls:
        metadata["envoy.transport_socket_match"].fields["tlsMode"].string_value = "istio"
    if workload is not None:
        metadata["istio"].fields["workload"].string_value = workload
    lb.load_balancing_weight.value = weight
    return group


def assignment(ctx: ProxyContext, cluster_name: str, by_host: Mapping[str, Service],
               built: _EndpointCache | None = None) -> endpoint_pb2.ClusterLoadAssignment:
    """The endpoints of `outbound|PORT|SUBSET|HOST`; unknown names get an empty assignment."""
    return ctx.parsed(endpoint_pb2.ClusterLoadAssignment, _assignment_bytes(ctx, cluster_name, by_host, built))


def _assignment_bytes(ctx: ProxyContext, cluster_name: str, by_host: Mapping[str, Service],
                      built: _EndpointCache | None) -> bytes:
    """`assignment`, serialized: its name's field, then each locality group's."""
    name = field(_NAME_TAG, cluster_name.encode())
    parsed = names.parse_cluster(cluster_name)
    if parsed is None:
        return name
    _, number, subset_name, host = parsed
    service = by_host.get(host)
    port = service.port(number) if service else None
    if service is None or port is None:
        return name
    rule = ctx.rule_for(service)
    built = built or _EndpointCache(ctx)
    labels: Mapping[str, str] = {}
    subset = None
    if subset_name:
        subset = rule.subset(subset_name) if rule else None
        if subset is None:
            return name
        labels = subset.labels
    groups: dict[str, list[bytes]] = {}
    weights: dict[str, int] = {}
    for endpoint, piece in built.lb_endpoints(service, port, built.tls_mode(rule, number, subset)):
        if labels and not all(endpoint.labels.get(k) == v for k, v in labels.items()):
            continue
        locality = endpoint.locality
        groups.setdefault(locality, []).append(piece)
        weights[locality] = weights.get(locality, 0) + endpoint.weight
    # Endpoint weights are uint32 each; their sum may not be. Envoy refuses such a locality
    # (the push is NACKed and reported), but building it must not fail.
    return b"".join([name, *(
        field(_ENDPOINTS_TAG, b"".join([_locality_piece(locality), *groups[locality],
                                        _weight_piece(min(weights[locality], MAX_UINT32))]))
        for locality in sorted(groups))])


# A ClusterLoadAssignment's fields as serialization writes them: `cluster_name` (1), then each
# locality group of `endpoints` (2), with nothing between.
_NAME_TAG, _ENDPOINTS_TAG = tags(endpoint_pb2.ClusterLoadAssignment, "cluster_name", "endpoints")


@functools.lru_cache(maxsize=4096)
def _locality_piece(label: str) -> bytes:
    """A locality group's `locality` (present even when empty), from `region/zone/sub_zone`."""
    parts = label.split("/") if label else []
    locality = base_pb2.Locality(region=parts[0] if parts else "", zone=parts[1] if len(parts) > 1 else "",
                                 sub_zone=parts[2] if len(parts) > 2 else "")
    return endpoint_components_pb2.LocalityLbEndpoints(locality=locality).SerializeToString(deterministic=True)


@functools.lru_cache(maxsize=4096)
def _weight_piece(weight: int) -> bytes:
    """A locality group's `load_balancing_weight`."""
    group = endpoint_components_pb2.LocalityLbEndpoints(load_balancing_weight=wrappers_pb2.UInt32Value(value=weight))
    return group.SerializeToString(deterministic=True)
