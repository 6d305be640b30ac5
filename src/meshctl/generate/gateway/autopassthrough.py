"""AUTO_PASSTHROUGH: a gateway that forwards Istio mTLS by its SNI, without terminating it.

A sidecar's mTLS SNI names the cluster it meant (`outbound_.9080_.v1_.reviews.default...`). A
multi-network (east-west) gateway with an AUTO_PASSTHROUGH server matches that SNI, and the
Istio ALPNs, and sends the still-encrypted connection to an SNI-DNAT cluster of the same name,
whose endpoints are only those that speak Istio mTLS (Istio's builtAutoPassthroughFilterChains
and buildOutboundSniDnatClusters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from meshctl import protocols
from meshctl.generate import filters, names
from meshctl.generate.context import ProxyContext
from meshctl.generate.gateway.listeners import GatewayChain
from meshctl.generate.tcproutes import stream_policy
from meshctl.generate.tls import ISTIO_ALL_ALPNS
from meshctl.hostnames import matches
from meshctl.model.service import Service, ServicePort

__all__ = ["auto_passthrough_chains", "sni_dnat_clusters", "sni_dnat_endpoints"]


def _targets(ctx: ProxyContext, hosts: Sequence[str]) -> Iterator[tuple[Service, ServicePort, str]]:
    """(service, port, subset) for every service the hosts cover, in the gateway's scope."""
    for service in ctx.scope.services:
        if service.mesh_external or not any(matches(host, service.hostname) for host in hosts):
            continue
        rule = ctx.rule_for(service)
        for port in service.ports:
            if port.protocol == protocols.UDP:
                continue
            yield service, port, ""
            for subset in rule.subsets if rule else ():
                yield service, port, subset.name


def auto_passthrough_chains(ctx: ProxyContext, hosts: Sequence[str]) -> list[GatewayChain]:
    """A chain per (service, port, subset): SNI = the SNI-DNAT cluster's name, Istio's ALPNs,
    and a tcp_proxy shaped by the service's DestinationRule as a sidecar's is, but never
    tunnelled (the client's mTLS goes through as it is)."""
    chains: list[GatewayChain] = []
    for service, port, subset in _targets(ctx, hosts):
        cluster = names.istio_sni(port.port, service.hostname, subset)
        policy = dataclasses.replace(stream_policy(ctx, service.hostname, service.namespace, subset), tunnel=None)
        chains.append(GatewayChain([filters.tcp_proxy(cluster, policy=policy)], sni_hosts=[cluster],
                                   alpn=list(ISTIO_ALL_ALPNS)))
    return chains


def sni_dnat_clusters(ctx: ProxyContext, hosts: Sequence[str],
                      outbound: Sequence[cluster_pb2.Cluster]) -> list[cluster_pb2.Cluster]:
    """The SNI-DNAT twin of each outbound EDS cluster the hosts cover: same settings, named by
    the SNI, no TLS of its own (the client's mTLS passes through)."""
    by_name = {cluster.name: cluster for cluster in outbound}
    out: list[cluster_pb2.Cluster] = []
    for service, port, subset in _targets(ctx, hosts):
        source = by_name.get(names.outbound_cluster(port.port, service.hostname, subset))
        if source is None or source.type != cluster_pb2.Cluster.EDS:
            continue
        name = names.istio_sni(port.port, service.hostname, subset)
        cluster = cluster_pb2.Cluster()
        cluster.CopyFrom(source)
        cluster.name = name
        cluster.alt_stat_name = name + ";"
        cluster.eds_cluster_config.service_name = name
        cluster.ClearField("transport_socket")
        cluster.ClearField("transport_socket_matches")
        out.append(cluster)
    return out


def sni_dnat_endpoints(clusters: Sequence[cluster_pb2.Cluster],
                       assignments: Sequence[endpoint_pb2.ClusterLoadAssignment]) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """Each SNI-DNAT cluster's endpoints: its outbound twin's that speak Istio mTLS."""
    by_name = {assignment.cluster_name: assignment for assignment in assignments}
    out: list[endpoint_pb2.ClusterLoadAssignment] = []
    for cluster in clusters:
        parts = cluster.name.split("_.")
        if len(parts) != 4:
            continue
        port, subset, host = parts[1], parts[2], parts[3]
        twin = by_name.get(names.outbound_cluster(int(port), host, subset))
        assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster.name)
        for group in twin.endpoints if twin is not None else ():
            kept = [lb for lb in group.lb_endpoints if _speaks_mtls(lb)]
            if kept:
                copy = assignment.endpoints.add()
                copy.CopyFrom(group)
                del copy.lb_endpoints[:]
                copy.lb_endpoints.extend(kept)
                copy.load_balancing_weight.value = sum(lb.load_balancing_weight.value for lb in kept)
        out.append(assignment)
    return out


def _speaks_mtls(lb: endpoint_components_pb2.LbEndpoint) -> bool:
    """An endpoint labelled for Istio mTLS (read without touching the shared message)."""
    metadata = lb.metadata.filter_metadata
    if _TLS_MATCH not in metadata:
        return False
    mode = metadata[_TLS_MATCH].fields.get("tlsMode")
    return mode is not None and mode.string_value == "istio"


_TLS_MATCH = "envoy.transport_socket_match"
