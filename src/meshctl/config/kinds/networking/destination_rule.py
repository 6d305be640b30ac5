"""DestinationRule: what happens to traffic once routed to a host (pools, balancing, TLS, subsets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshctl.config.kinds.common import (
    ANY_DURATION,
    EXPORT_TO,
    INT32,
    LABELS,
    POSITIVE_INT32,
    STRICT_DURATION,
    UINT32,
    UINT32_SECONDS,
    Nanos,
    WorkloadSelector,
)
from meshctl.config.kinds.networking.fields import PORT_OR_ZERO, SUBSET_NAME, domain_rule, fqdn_only_problem
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, Float, Int, List, Map, Report, Str
from meshctl.config.values import is_ip

__all__ = [
    "ClientTLSSettings",
    "ConnectionPoolSettings",
    "ConsistentHashLB",
    "CookieAttribute",
    "DestinationRule",
    "Distribute",
    "Failover",
    "HTTP2KeepAlive",
    "HTTPCookie",
    "HTTPSettings",
    "LoadBalancerSettings",
    "LocalityLoadBalancerSetting",
    "MagLev",
    "OutlierDetection",
    "PolicyPort",
    "PortTrafficPolicy",
    "ProxyProtocol",
    "RING_SIZE",
    "RetryBudget",
    "RingHash",
    "Subset",
    "TCPSettings",
    "TcpKeepalive",
    "TrafficPolicy",
    "TunnelSettings",
    "WarmupConfiguration",
]


def _http_pool_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("h2UpgradePolicy") == "UPGRADE" and value.get("useClientProtocol"):
        report((*path, "useClientProtocol"), "useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE")


def _connection_pool_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("http") is None and value.get("tcp") is None:
        report(path, "connectionPool must set tcp, http or both")


@message
class TcpKeepalive(Message):
    probes: int | None = field(UINT32)
    time: Nanos | None = field(UINT32_SECONDS)
    interval: Nanos | None = field(UINT32_SECONDS)


@message
class TCPSettings(Message):
    max_connections: int | None = field(POSITIVE_INT32)
    connect_timeout: Nanos | None = field(STRICT_DURATION)
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Nanos | None = field(STRICT_DURATION)
    idle_timeout: Nanos | None = field(STRICT_DURATION)


@message
class HTTP2KeepAlive(Message):
    interval: Nanos | None = field(STRICT_DURATION)
    timeout: Nanos | None = field(STRICT_DURATION)


@message(rules=[_http_pool_rule])
class HTTPSettings(Message):
    http1_max_pending_requests: int | None = field(POSITIVE_INT32)
    http2_max_requests: int | None = field(POSITIVE_INT32)
    max_requests_per_connection: int | None = field(POSITIVE_INT32)
    max_retries: int | None = field(POSITIVE_INT32)
    idle_timeout: Nanos | None = field(STRICT_DURATION)
    h2_upgrade_policy: str = field(Enum("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"))
    use_client_protocol: bool = False
    max_concurrent_streams: int | None = field(POSITIVE_INT32)
    http2_keep_alive: HTTP2KeepAlive | None = None


@message(rules=[_connection_pool_rule])
class ConnectionPoolSettings(Message):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


def _is_prime(number: int) -> bool:
    if number < 2:
        return False
    if number < 4:
        return True
    if number % 2 == 0:
        return False
    factor = 3
    while factor * factor <= number:
        if number % factor == 0:
            return False
        factor += 2
    return True


def _maglev_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    size = value.get("tableSize") or 0
    if size == 0:
        report((*path, "tableSize"), "maglev needs tableSize")
    elif size >= 5000011:
        report((*path, "tableSize"), "maglev tableSize must be less than 5000011")
    elif not _is_prime(size):
        report((*path, "tableSize"), f"maglev tableSize {size} must be a prime number")


def _consistent_hash_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("minimumRingSize") and (value.get("ringHash") is not None or value.get("maglev") is not None):
        report((*path, "minimumRingSize"), "minimumRingSize cannot be combined with ringHash or maglev")


@message(required=["name"])
class CookieAttribute(Message):
    name: str = field(Str(min_len=1))
    value: str = ""


@message(required=["name"])
class HTTPCookie(Message):
    name: str = field(Str(min_len=1))
    path: str = ""
    ttl: Nanos | None = field(ANY_DURATION)
    attributes: tuple[CookieAttribute, ...] = ()


RING_SIZE = Int(0, 8_388_608)
"""Envoy refuses hash rings larger than 2^23 entries (RingHashLbConfig.minimum_ring_size)."""


@message
class RingHash(Message):
    minimum_ring_size: int | None = field(RING_SIZE)


@message(rules=[_maglev_rule])
class MagLev(Message):
    table_size: int | None = field(Int(0))


@message(
    oneof=[("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"), ("ringHash", "maglev")],
    rules=[_consistent_hash_rule],
)
class ConsistentHashLB(Message):
    http_header_name: str = ""
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool = False
    http_query_parameter_name: str = ""
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: int | None = field(RING_SIZE)


_TOPOLOGY_LABELS = frozenset(
    {"topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"}
)


def _localities_problem(localities: list[str]) -> str | None:
    """Istio's validateLocalities: `region[/zone[/subzone]]`, one trailing `*`, no overlaps."""
    tree: dict[str, dict[str, set[str]]] = {}
    for locality in localities:
        stars = locality.count("*")
        if stars and (stars > 1 or not locality.endswith("*")):
            return f"locality {locality!r} may only end with a single '*'"
        if "*" in tree:
            return f"locality {locality!r} overlaps an earlier one"
        parts = locality.split("/", 2)
        if any(not part for part in parts):
            return f"locality {locality!r} has an empty region, zone or subzone"
        region = parts[0]
        zones = tree.get(region)
        if len(parts) == 1:
            if zones is not None:
                return f"locality {locality!r} overlaps an earlier one"
            tree[region] = {"*": {"*"}}
            continue
        zone = parts[1]
        if zones is not None and "*" in zones:
            return f"locality {locality!r} overlaps an earlier one"
        zones = tree.setdefault(region, {})
        subzones = zones.get(zone)
        if len(parts) == 2:
            if subzones is not None:
                return f"locality {locality!r} overlaps an earlier one"
            zones[zone] = {"*"}
            continue
        if subzones is not None and ("*" in subzones or parts[2] in subzones):
            return f"locality {locality!r} overlaps an earlier one"
        zones.setdefault(zone, set()).add(parts[2])
    return None


def _locality_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    distribute = value.get("distribute") or []
    failover = value.get("failover") or []
    if distribute and failover:
        report(path, "distribute and failover cannot both be set")
        return
    if failover:
        for index, label in enumerate(value.get("failoverPriority") or []):
            if label in _TOPOLOGY_LABELS:
                report((*path, "failoverPriority", index),
                       f"failoverPriority cannot use the topology label {label!r} together with failover")
                return
    for index, entry in enumerate(distribute):
        weights = entry.get("to") or {}
        where = (*path, "distribute", index, "to")
        if any(not 1 <= weight <= 100 for weight in weights.values()):
            report(where, "locality weights must be between 1 and 100")
            return
        if sum(weights.values()) != 100:
            report(where, f"locality weights add up to {sum(weights.values())}, not 100")
            return
        problem = _localities_problem(list(weights))
        if problem:
            report(where, problem)
    problem = _localities_problem([entry.get("from") or "" for entry in distribute])
    if problem:
        report((*path, "distribute"), problem)
    for index, entry in enumerate(failover):
        source, target = entry.get("from") or "", entry.get("to") or ""
        where = (*path, "failover", index)
        if source == target:
            report(where, "failover from and to must be different regions")
        if "/" in source or "/" in target:
            report(where, "failover takes regions, not zones")
        if "*" in source or "*" in target:
            report(where, "failover regions must not contain '*'")


@message
class Distribute(Message):
    from_: str = ""
    to: Mapping[str, int] = field(Map(UINT32))


@message
class Failover(Message):
    from_: str = ""
    to: str = ""


@message(rules=[_locality_rule])
class LocalityLoadBalancerSetting(Message):
    distribute: tuple[Distribute, ...] = ()
    failover: tuple[Failover, ...] = ()
    failover_priority: tuple[str, ...] = field(List(Str(min_len=1)))
    enabled: bool | None = None


@message(required=["duration"])
class WarmupConfiguration(Message):
    duration: Nanos | None = field(STRICT_DURATION)
    minimum_percent: float | None = field(Float(0, 100))
    aggression: float | None = field(Float(0))


@message(oneof=[("simple", "consistentHash")])
class LoadBalancerSettings(Message):
    simple: str = field(Enum("UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"))
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    warmup_duration_secs: Nanos | None = field(STRICT_DURATION)
    warmup: WarmupConfiguration | None = None


def _outlier_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if (value.get("consecutiveLocalOriginFailures") or 0) > 0 and not value.get("splitExternalLocalOriginErrors"):
        report((*path, "consecutiveLocalOriginFailures"),
               "consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true")


@message(rules=[_outlier_rule])
class OutlierDetection(Message):
    split_external_local_origin_errors: bool = False
    consecutive_local_origin_failures: int | None = field(UINT32)
    consecutive_gateway_errors: int | None = field(UINT32)
    consecutive_5xx_errors: int | None = field(UINT32)
    interval: Nanos | None = field(STRICT_DURATION)
    base_ejection_time: Nanos | None = field(STRICT_DURATION)
    max_ejection_percent: int | None = field(Int(0, 100))
    min_health_percent: int | None = field(Int(0, 100))
    consecutive_errors: int | None = field(INT32)


def _client_tls_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    mode = value.get("mode") or "DISABLE"
    credential = value.get("credentialName")
    if value.get("insecureSkipVerify"):
        if mode == "SIMPLE" and (value.get("caCertificates") or credential or value.get("subjectAltNames")):
            report((*path, "insecureSkipVerify"),
                   "insecureSkipVerify cannot be combined with caCertificates, credentialName or subjectAltNames")
        if mode == "MUTUAL" and (value.get("caCertificates") or value.get("subjectAltNames")):
            report((*path, "insecureSkipVerify"),
                   "insecureSkipVerify cannot be combined with caCertificates or subjectAltNames")
    if mode in ("SIMPLE", "MUTUAL") and credential:
        if any(value.get(key) for key in ("clientCertificate", "privateKey", "caCertificates", "caCrl")):
            report((*path, "credentialName"),
                   "credentialName cannot be combined with clientCertificate, privateKey, caCertificates or caCrl")
        return
    if mode == "MUTUAL":
        for key in ("clientCertificate", "privateKey"):
            if not value.get(key):
                report((*path, key), f"mode MUTUAL needs {key} (or credentialName)")


@message(rules=[_client_tls_rule])
class ClientTLSSettings(Message):
    mode: str = field(Enum("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"))
    client_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""
    credential_name: str = ""
    subject_alt_names: tuple[str, ...] = ()
    sni: str = ""
    insecure_skip_verify: bool | None = None
    ca_crl: str = ""


_POLICY_PARTS = ("loadBalancer", "connectionPool", "outlierDetection", "tls")


def _port_policy_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if all(value.get(key) is None for key in _POLICY_PARTS):
        report(path, "port-level settings must set at least one of " + ", ".join(_POLICY_PARTS))


@message
class PolicyPort(Message):
    """A port-level policy's port: `number` 0 is Istio's way to say "unset"."""

    number: int = field(PORT_OR_ZERO)


@message(required=["port"], rules=[_port_policy_rule])
class PortTrafficPolicy(Message):
    port: PolicyPort
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


def _tunnel_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("protocol") not in (None, "", "CONNECT", "POST"):
        report((*path, "protocol"), "tunnel protocol must be 'CONNECT' or 'POST'")
    host = value["targetHost"]
    if not is_ip(host) and fqdn_only_problem(host):
        report((*path, "targetHost"), f"tunnel targetHost {host!r} is neither a host name nor an IP address")
    if not 1 <= value["targetPort"] <= 65535:
        report((*path, "targetPort"), "tunnel targetPort must be between 1 and 65535")


@message(required=["targetHost", "targetPort"], rules=[_tunnel_rule])
class TunnelSettings(Message):
    protocol: str = ""
    target_host: str = ""
    target_port: int = field(UINT32)


def _traffic_policy_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if all(item is None or item == [] for item in value.values()):
        report(path, "trafficPolicy must set at least one field")
    if value.get("tunnel") is not None and value.get("proxyProtocol") is not None:
        report((*path, "proxyProtocol"), "tunnel and proxyProtocol cannot both be set")


@message
class ProxyProtocol(Message):
    version: str = field(Enum("V1", "V2"))


@message
class RetryBudget(Message):
    percent: float | None = field(Float(0, 100))
    min_retry_concurrency: int | None = field(UINT32)
    budget_interval: Nanos | None = field(STRICT_DURATION)


@message(rules=[_traffic_policy_rule])
class TrafficPolicy(Message):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...] = ()
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None


@message(required=["name"])
class Subset(Message):
    name: str = field(SUBSET_NAME)
    labels: Mapping[str, str] = field(LABELS)
    traffic_policy: TrafficPolicy | None = None


def _subsets_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    seen: set[str] = set()
    for index, subset in enumerate(value):
        name = subset["name"]
        if name in seen:
            report((*path, index, "name"), f"duplicate subset name {name!r}")
        seen.add(name)


def _exported_selector_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    """A rule for selected workloads is private to its namespace: they all live there."""
    export_to = spec.get("exportTo") or []
    if spec.get("workloadSelector") is not None and export_to:
        if len(set(export_to)) > 1 or export_to[0] in ("*", "~"):
            report((*path, "exportTo"),
                   "a DestinationRule with workloadSelector can only be exported to its own namespace")


@message(required=["host"], rules=[_exported_selector_rule])
class DestinationRule(Message):
    host: str = field(Str(min_len=1, rules=[domain_rule]))
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = field(List(Subset.SCHEMA, rules=[_subsets_rule]))
    export_to: tuple[str, ...] = field(EXPORT_TO)
    workload_selector: WorkloadSelector | None = None
