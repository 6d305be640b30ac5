"""The upstream side of a request: the cluster it is sent to, and that cluster's endpoints.

A cluster is described by what decides where and how bytes go: its discovery type, load
balancer, TLS (Istio's auto mTLS is a pair of `transport_socket_matches`: endpoints labelled
`tlsMode: istio` get mTLS, others plaintext), circuit breakers and outlier detection. Endpoints
come from EDS, from the cluster itself (STATIC, DNS) or from the connection (ORIGINAL_DST); each
is shown with its health as the control plane reported it, and the transport socket it gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshctl.explain.protos import UPSTREAM_TLS, type_name, unpack
from meshctl.explain.provenance import Names, config_path_of, parse_subset_key, services_of
from meshctl.explain.result import Outcome, Source, Step, Verdict
from meshctl.explain.view import ProxyView

__all__ = ["cluster_steps"]

_TYPES = {0: "STATIC", 1: "STRICT_DNS", 2: "LOGICAL_DNS", 3: "EDS", 4: "ORIGINAL_DST"}
_LB = {0: "ROUND_ROBIN", 1: "LEAST_REQUEST", 2: "RING_HASH", 3: "RANDOM", 5: "MAGLEV", 6: "CLUSTER_PROVIDED",
       7: "LOAD_BALANCING_POLICY_CONFIG"}
_HEALTH = {0: "UNKNOWN", 1: "HEALTHY", 2: "UNHEALTHY", 3: "DRAINING", 4: "TIMEOUT", 5: "DEGRADED"}
_UNLIMITED = 4294967295
BLACKHOLE = "BlackHoleCluster"
PASSTHROUGH_CLUSTERS = ("PassthroughCluster", "InboundPassthroughCluster")


def cluster_steps(view: ProxyView, provenance: Names, name: str, dst: tuple[str, int]) -> tuple[list[Step], Outcome]:
    """The cluster step and the endpoints step for a request sent to cluster `name`, and how it
    ends (`dst` is the connection's original destination, for ORIGINAL_DST clusters)."""
    lookup = view.cluster(name)
    if lookup.found is None:
        if not lookup.known:
            return [], Outcome(Verdict.undetermined, f"sent to cluster {name}, but {lookup.why}", code="unknown")
        return ([Step("cluster", name, ("not in the proxy's config: Envoy answers 503 (cluster not found, NC)",))],
                Outcome(Verdict.rejected, f"cluster {name} does not exist: 503", 503, "cluster-not-found"))
    cluster = lookup.found
    step = Step("cluster", name, tuple(_cluster_facts(cluster)), tuple(_cluster_sources(cluster, provenance)))
    kind = _kind(cluster)
    if name == BLACKHOLE:
        return [step], Outcome(Verdict.rejected, f"dropped: {name} has no endpoints, the connection is closed",
                               code="blackhole")
    if kind == "ORIGINAL_DST":
        address = f"{dst[0]}:{dst[1]}" if dst[0] else f"(unknown address):{dst[1]}"
        if name in PASSTHROUGH_CLUSTERS:
            endpoints = Step("endpoints", address, ("the connection's original destination, outside the mesh's "
                                                    "service registry",))
            return [step, endpoints], Outcome(Verdict.passthrough, f"passed through to the original destination "
                                                                   f"{address} ({name})")
        endpoints = Step("endpoints", address, ("the connection's original destination",))
        return [step, endpoints], Outcome(Verdict.forwarded, f"forwarded to {name}: the original destination {address}")
    assignment, why = _assignment(view, cluster, kind)
    if assignment is None:
        return [step], Outcome(Verdict.undetermined, f"forwarded to cluster {name}; its endpoints are unknown: {why}",
                               code="unknown")
    facts, sources, healthy, total = _endpoint_facts(assignment, cluster, provenance, kind)
    if total == 0:
        endpoint_step = Step("endpoints", "none", ("no endpoints: Envoy answers 503 (no healthy upstream, UH)",))
        return [step, endpoint_step], Outcome(Verdict.rejected, f"cluster {name} has no endpoints: 503", 503, "no-endpoints")
    summary = f"{total} endpoint{'s' if total != 1 else ''}, {healthy} healthy"
    if healthy == 0:
        facts.append("none is healthy: Envoy's panic mode balances over all of them")
    endpoint_step = Step("endpoints", summary, tuple(facts), tuple(sources))
    return [step, endpoint_step], Outcome(Verdict.forwarded, f"forwarded to {name} ({summary})")


def _kind(cluster: Any) -> str:
    if cluster.HasField("cluster_type"):
        return str(cluster.cluster_type.name)
    return _TYPES.get(cluster.type, str(cluster.type))


def _cluster_facts(cluster: Any) -> list[str]:
    kind = _kind(cluster)
    facts = [f"type {kind}, load balancer {_LB.get(cluster.lb_policy, cluster.lb_policy)}"]
    if cluster.HasField("connect_timeout"):
        facts[0] += f", connect timeout {cluster.connect_timeout.ToMilliseconds() / 1000:g}s"
    facts.extend(_tls_facts(cluster))
    limits = []
    for threshold in cluster.circuit_breakers.thresholds:
        if threshold.priority != 0:
            continue
        for field, label in (("max_connections", "connections"), ("max_pending_requests", "pending requests"),
                             ("max_requests", "requests"), ("max_retries", "retries")):
            if threshold.HasField(field) and getattr(threshold, field).value != _UNLIMITED:
                limits.append(f"{getattr(threshold, field).value} {label}")
    if limits:
        facts.append("circuit breakers: at most " + ", ".join(limits))
    if cluster.HasField("outlier_detection"):
        outlier = cluster.outlier_detection
        parts = []
        if outlier.HasField("consecutive_5xx"):
            parts.append(f"{outlier.consecutive_5xx.value} consecutive 5xx")
        if outlier.HasField("consecutive_gateway_failure"):
            parts.append(f"{outlier.consecutive_gateway_failure.value} consecutive gateway failures")
        if outlier.HasField("base_ejection_time"):
            parts.append(f"for {outlier.base_ejection_time.ToMilliseconds() / 1000:g}s")
        facts.append("outlier detection: ejects a host after " + " ".join(parts) if parts else "outlier detection on")
    if kind in ("STRICT_DNS", "LOGICAL_DNS"):
        hosts = [f"{ep.endpoint.address.socket_address.address}:{ep.endpoint.address.socket_address.port_value}"
                 for group in cluster.load_assignment.endpoints for ep in group.lb_endpoints]
        facts.append(f"resolves {', '.join(hosts)} through DNS when the proxy runs")
    return facts


def _tls_of(socket: Any) -> str:
    if not socket.HasField("typed_config") or type_name(socket.typed_config) != UPSTREAM_TLS:
        return "plaintext" if not socket.name or "raw_buffer" in socket.name else socket.name
    context = unpack(socket.typed_config)
    if context is None:
        return "TLS"
    common = context.common_tls_context
    certs = [c.name for c in common.tls_certificate_sds_secret_configs]
    validation = common.combined_validation_context.validation_context_sds_secret_config.name
    sans = [m.matcher.exact or m.matcher.prefix for m in
            common.combined_validation_context.default_validation_context.match_typed_subject_alt_names]
    sans += [m.exact or m.prefix for m in
             common.combined_validation_context.default_validation_context.match_subject_alt_names]
    if certs == ["default"] and validation == "ROOTCA":
        text = "Istio mTLS"
    else:
        text = "mutual TLS" if certs or common.tls_certificates else "TLS"
    if context.sni:
        text += f', SNI "{context.sni}"'
    if sans:
        text += f", peer must be {' or '.join(sans)}"
    return text


def _tls_facts(cluster: Any) -> list[str]:
    facts = []
    for match in cluster.transport_socket_matches:
        criteria = ", ".join(f"{key}={value.string_value}" for key, value in sorted(match.match.fields.items()))
        facts.append(f"endpoints {('with ' + criteria) if criteria else '(any)'}: {_tls_of(match.transport_socket)}"
                     f" (transport_socket_matches {match.name})")
    if cluster.HasField("transport_socket"):
        prefix = "other endpoints: " if facts else "upstream "
        facts.append(prefix + _tls_of(cluster.transport_socket))
    elif not facts:
        facts.append("upstream plaintext")
    return facts


def _cluster_sources(cluster: Any, provenance: Names) -> list[Source]:
    sources: list[Source] = []
    path = config_path_of(cluster.metadata)
    key = parse_subset_key(cluster.name)
    if path:
        source = provenance.subset(path, key[2]) if key and key[2] else provenance.config(path)
        if source is not None:
            sources.append(source)
    for host, _name, namespace in services_of(cluster.metadata):
        source = provenance.service(host, namespace)
        if source is not None and source not in sources:
            sources.append(source)
    return sources


def _assignment(view: ProxyView, cluster: Any, kind: str) -> tuple[Any | None, str]:
    if kind != "EDS":
        return cluster.load_assignment, ""
    service = cluster.eds_cluster_config.service_name or cluster.name
    lookup = view.load_assignment(service)
    if lookup.found is not None:
        return lookup.found, ""
    if not lookup.known:
        return None, lookup.why
    return None, f"no endpoint assignment for {service} was received (EDS)"


def _socket_for(cluster: Any, endpoint: Any) -> str:
    """The transport socket Envoy picks for an endpoint: the first match whose criteria are in
    the endpoint's `envoy.transport_socket_match` metadata, else the cluster's own."""
    if not cluster.transport_socket_matches:
        return ""
    labels = endpoint.metadata.filter_metadata.get("envoy.transport_socket_match")
    values = {key: value.string_value for key, value in labels.fields.items()} if labels is not None else {}
    for match in cluster.transport_socket_matches:
        wanted = {key: value.string_value for key, value in match.match.fields.items()}
        if all(values.get(key) == value for key, value in wanted.items()):
            return _tls_of(match.transport_socket)
    return _tls_of(cluster.transport_socket) if cluster.HasField("transport_socket") else "plaintext"


def _endpoint_facts(assignment: Any, cluster: Any, provenance: Names, kind: str) -> tuple[list[str], list[Source], int, int]:
    facts: list[str] = []
    sources: list[Source] = []
    healthy = total = 0
    for group in assignment.endpoints:
        locality = "/".join(part for part in (group.locality.region, group.locality.zone, group.locality.sub_zone) if part)
        for lb_endpoint in group.lb_endpoints:
            total += 1
            address = lb_endpoint.endpoint.address
            where = (f"{address.socket_address.address}:{address.socket_address.port_value}"
                     if address.HasField("socket_address") else address.pipe.path)
            status = _HEALTH.get(lb_endpoint.health_status, str(lb_endpoint.health_status))
            if lb_endpoint.health_status in (0, 1, 5):
                healthy += 1
            parts = [where, status]
            if group.priority:
                parts.append(f"priority {group.priority}")
            if locality:
                parts.append(f"locality {locality}")
            if lb_endpoint.HasField("load_balancing_weight") and lb_endpoint.load_balancing_weight.value != 1:
                parts.append(f"weight {lb_endpoint.load_balancing_weight.value}")
            socket = _socket_for(cluster, lb_endpoint)
            if socket:
                parts.append(socket.split(",", 1)[0])
            facts.append(" ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if parts[2:] else ""))
            if address.HasField("socket_address") and kind == "EDS":
                source = provenance.workload(address.socket_address.address)
                if source is not None:
                    sources.append(source)
    return facts, sources, healthy, total


def weights(clusters: Sequence[Any], total: int) -> list[tuple[str, int, float]]:
    """(cluster, weight, percent) of weighted clusters; zero weights are never picked."""
    def weight(cluster: Any) -> int:
        # Route weights are UInt32Value wrappers; a TCP proxy's are plain integers.
        return int(cluster.weight.value if hasattr(cluster.weight, "value") else cluster.weight)

    whole = total or sum(weight(c) for c in clusters) or 1
    return [(c.name, weight(c), 100.0 * weight(c) / whole) for c in clusters]
