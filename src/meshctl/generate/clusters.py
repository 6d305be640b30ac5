"""CDS: outbound clusters per service port and subset, the catch-all clusters, inbound clusters."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
import dataclasses
from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2, filter_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.extensions.clusters.common.dns.v3 import dns_pb2
from envoy.extensions.clusters.dns.v3 import dns_cluster_pb2
from envoy.extensions.network.dns_resolver.cares.v3 import cares_dns_resolver_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from meshctl.config.kinds.networking.destination_rule import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    Subset,
    TrafficPolicy,
)
from meshctl.config.kinds.mesh import LOCALHOST as LOCALHOST_POLICY
from meshctl.config.kinds.networking.service_entry import ServiceEntry
from meshctl.config.kinds.networking.sidecar import split_host_port
from meshctl.generate import names, policy, tls
from meshctl.generate.core import ADS, istio_metadata, set_address
from meshctl.generate.filters import METADATA_EXCHANGE, TCP_METADATA_EXCHANGE_CONFIG
from meshctl.generate.names import BLACKHOLE, INBOUND_PASSTHROUGH, PASSTHROUGH
from meshctl.generate.protobuf import duration, set_duration, typed
from meshctl.generate.context import InboundPort, ProxyContext
from meshctl.generate.templates import slot
from meshctl import protocols
from meshctl.model.istio import DestinationRuleView, config_path
from meshctl.model.service import (
    CLIENT_SIDE_LB,
    DNS_LB,
    DNS_ROUND_ROBIN,
    PASSTHROUGH as PASSTHROUGH_RESOLUTION,
    Service,
    ServicePort,
)
from meshctl.model.snapshot import DISABLE

__all__ = [
    "DNS_CLUSTER_TYPE",
    "HTTP_OPTIONS_KEY",
    "INBOUND_BIND",
    "LOCALHOST",
    "LOCALHOST_V6",
    "MAX_CLEANUP_SECONDS",
    "METADATA_EXCHANGE_FILTER",
    "blackhole_cluster",
    "build_inbound_clusters",
    "build_outbound_clusters",
    "catch_all_clusters",
    "inbound_cluster",
    "inbound_passthrough_cluster",
    "outbound_clusters",
    "passthrough_cluster",
    "service_accounts",
    "service_clusters",
    "unique_clusters",
]

INBOUND_BIND = "127.0.0.6"
LOCALHOST = "127.0.0.1"
LOCALHOST_V6 = "::1"
MAX_CLEANUP_SECONDS = 9223372035
_DISCOVERY = {
    CLIENT_SIDE_LB: cluster_pb2.Cluster.EDS,
    PASSTHROUGH_RESOLUTION: cluster_pb2.Cluster.ORIGINAL_DST,
    DNS_LB: cluster_pb2.Cluster.STRICT_DNS,
    DNS_ROUND_ROBIN: cluster_pb2.Cluster.LOGICAL_DNS,
}
HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
DNS_CLUSTER_TYPE = "envoy.clusters.dns"


# Istio's upstream TCP metadata exchange (istio-proxy builds only).
METADATA_EXCHANGE_FILTER = filter_pb2.Filter(name=METADATA_EXCHANGE, typed_config=TCP_METADATA_EXCHANGE_CONFIG)


def build_outbound_clusters(ctx: ProxyContext) -> list[cluster_pb2.Cluster]:
    """Clusters that depend only on what the proxy sees (shared by proxies with the same view):
    every imported service's, then BlackHoleCluster and (sidecars only) PassthroughCluster."""
    return service_clusters(ctx, ctx.scope.services) + catch_all_clusters(ctx)


def service_clusters(ctx: ProxyContext, services: Iterable[Service]) -> list[cluster_pb2.Cluster]:
    """The outbound clusters of these services, one after the other, each service's built once
    for as long as what it reads stays (`_service_key`)."""
    out: list[cluster_pb2.Cluster] = []
    for service in services:
        out.extend(ctx.memo_by(lambda: _service_key(ctx, service), lambda: list(outbound_clusters(ctx, service))))
    return out


def catch_all_clusters(ctx: ProxyContext) -> list[cluster_pb2.Cluster]:
    """The outbound clusters no service makes, after every service's: BlackHoleCluster and
    (sidecars only) PassthroughCluster."""
    if ctx.proxy.is_router:
        return [blackhole_cluster(ctx)]
    return [blackhole_cluster(ctx), passthrough_cluster(ctx)]


def build_inbound_clusters(ctx: ProxyContext) -> list[cluster_pb2.Cluster]:
    """Clusters of the proxy's own workload: one per port it serves, and inbound passthrough."""
    out: list[cluster_pb2.Cluster] = []
    if ctx.proxy.captures_traffic or ctx.scope.ingress:
        for port in ctx.inbound_ports():
            out.append(inbound_cluster(ctx, port))
    if ctx.proxy.captures_traffic:
        out.append(inbound_passthrough_cluster(ctx))
    return out


def unique_clusters(clusters: Iterable[cluster_pb2.Cluster]) -> list[cluster_pb2.Cluster]:
    """First of duplicate names kept, as Istio does."""
    seen: set[str] = set()
    unique = []
    for cluster in clusters:
        if cluster.name not in seen:
            seen.add(cluster.name)
            unique.append(cluster)
    return unique


def _service_key(ctx: ProxyContext, service: Service) -> tuple[Hashable, ...]:
    """Everything a service's outbound clusters depend on (see GenerationCache)."""
    rule = ctx.rule_for(service)
    return (
        "clusters", service.source.revision, service.hostname,
        tuple(r.revision for r in rule.resources) if rule else None,
        ctx.snapshot.versions_of("PeerAuthentication", "Namespace"),
        ctx.snapshot.registry.signature(service),
        ctx.proxy.istio_extensions, ctx.proxy.type, ctx.headers.preserve_case, ctx.snapshot.mesh_key,
    )


def outbound_clusters(ctx: ProxyContext, service: Service) -> Iterable[cluster_pb2.Cluster]:
    """Per non-UDP port: the default cluster, then one per DestinationRule subset (see
    `_port_clusters`)."""
    discovery = _DISCOVERY.get(service.resolution)
    if discovery is None:
        return
    if ctx.proxy.is_router and service.resolution == PASSTHROUGH_RESOLUTION:
        discovery = cluster_pb2.Cluster.EDS  # a gateway balances over a headless service's endpoints
    rule = ctx.rule_for(service)
    accounts = service_accounts(ctx, service)
    inferred = _inferred_mode(ctx, service)
    config = config_path(rule.resource) if rule is not None else ""
    for port in service.ports:
        if port.protocol != protocols.UDP:
            yield from _port_clusters(ctx, service, port, discovery, rule, accounts, inferred, config)


def _port_clusters(ctx: ProxyContext, service: Service, port: ServicePort, discovery: int,
                   rule: DestinationRuleView | None, accounts: Sequence[str], inferred: str,
                   config: str) -> list[cluster_pb2.Cluster]:
    """A port's clusters, rendered from byte templates after the first service of the same
    shape (`_shape`): the clusters of services alike in all but their names differ only in
    strings, the templates' values: host, name, namespace, the rule's path, the SANs."""
    schemes, rests = _split_accounts(accounts)
    values = (service.hostname, service.name, service.namespace, config, *rests)
    marks = (slot(0), slot(1), slot(2), slot(3) if config else "", *(
        slot(index) if scheme is None else f"{scheme}://{slot(index)}" for index, scheme in enumerate(schemes, start=4)))

    def build(strings: Sequence[str]) -> list[cluster_pb2.Cluster]:
        named = service if strings is values else dataclasses.replace(
            service, hostname=strings[0], name=strings[1], namespace=strings[2])
        sans = accounts if strings is values else strings[4:]
        return _built_port_clusters(ctx, named, port, discovery, rule, sans, inferred, strings[3])

    serialized = ctx.templates.serialized(_shape(service, port, discovery, rule, schemes, inferred), values, marks, build)
    return [ctx.parsed(cluster_pb2.Cluster, data) for data in serialized]


def _split_accounts(accounts: Sequence[str]) -> tuple[tuple[str | None, ...], list[str]]:
    """Each SAN's scheme (None if it is no URI) and the rest, the template's value: a SAN is
    matched as a URI when it holds `://` (tls.py), so the scheme is part of the shape."""
    schemes: list[str | None] = []
    rests: list[str] = []
    for account in accounts:
        scheme, separator, rest = account.partition("://")
        schemes.append(scheme if separator else None)
        rests.append(rest if separator else account)
    return tuple(schemes), rests


def _shape(service: Service, port: ServicePort, discovery: int, rule: DestinationRuleView | None,
           schemes: tuple[str | None, ...], inferred: str) -> Hashable | None:
    """Everything a port's clusters read but their templates' values; None for clusters never
    templated: DNS ones (they carry their endpoints), a rule's own TLS (SIMPLE or MUTUAL:
    credentials, and a warning naming the cluster)."""
    if discovery != cluster_pb2.Cluster.EDS:
        return None
    rule_shape: Hashable = None
    if rule is not None:
        if _user_tls(rule):
            return None
        rule_shape = (rule.traffic_policy, bool(rule.selector),
                      tuple((subset.name, subset.traffic_policy) for subset in rule.subsets))
    return ("clusters", port.port, port.protocol, service.resolution, service.mesh_external,
            service.from_kubernetes, schemes, inferred, rule_shape)


def _user_tls(rule: DestinationRuleView) -> bool:
    """Whether the rule sets TLS of its own (SIMPLE or MUTUAL) anywhere."""
    policies = [rule.traffic_policy, *(subset.traffic_policy for subset in rule.subsets)]
    for traffic in policies:
        if traffic is None:
            continue
        settings = [traffic.tls, *(level.tls for level in traffic.port_level_settings)]
        if any(tls_settings is not None and tls_settings.mode in ("SIMPLE", "MUTUAL") for tls_settings in settings):
            return True
    return False


def _built_port_clusters(ctx: ProxyContext, service: Service, port: ServicePort, discovery: int,
                         rule: DestinationRuleView | None, accounts: Sequence[str], inferred: str,
                         config: str) -> list[cluster_pb2.Cluster]:
    """A port's clusters built as messages: the default cluster, then one per subset.

    A subset without its own traffic policy differs from the default cluster only in names,
    metadata and the mTLS SNI, so it is derived from a copy instead of being rebuilt.
    """
    metadata = _service_metadata(service, config)
    out: list[cluster_pb2.Cluster] = []
    base_policy = policy.for_port(rule.traffic_policy if rule else None, port.port)
    base = _outbound(ctx, service, port, discovery, "", base_policy, rule, accounts, metadata, inferred)
    if base is not None:
        out.append(base.cluster)
    for subset in rule.subsets if rule else ():
        if base is not None and subset.traffic_policy is None and base.cluster.type == cluster_pb2.Cluster.EDS:
            out.append(_derived_subset(base, service, port, subset.name))
            continue
        merged = policy.for_subset(base_policy, subset.traffic_policy, port.port)
        built = _outbound(ctx, service, port, discovery, subset.name, merged, rule, accounts, metadata, inferred, subset)
        if built is not None:
            out.append(built.cluster)
    return out


def service_accounts(ctx: ProxyContext, service: Service) -> list[str]:
    """SPIFFE ids a client accepts from this service's endpoints (sorted, in every trust domain
    of the mesh), plus an entry's SANs."""
    registry = ctx.snapshot.registry
    trust_domains = ctx.mesh.trust_domains
    accounts = set(service.subject_alt_names)
    for port in service.ports:
        for endpoint in registry.endpoints(service, port):
            workload = endpoint.workload
            if workload is not None and workload.service_account:
                # Istio's ExpandWithTrustDomains: the identity under the mesh's trust domain
                # and under each of its aliases.
                accounts.update(workload.spiffe_id(domain) for domain in trust_domains)
    return sorted(accounts)


def _service_metadata(service: Service, config: str) -> base_pb2.Metadata:
    """`filter_metadata.istio` shared by a service's clusters: services, external, and the
    path of its DestinationRule (`config`, if it has one)."""
    metadata = base_pb2.Metadata()
    istio = metadata.filter_metadata["istio"].fields
    entry = istio["services"].list_value.values.add().struct_value.fields
    entry["host"].string_value = service.hostname
    entry["name"].string_value = service.name
    entry["namespace"].string_value = service.namespace
    if service.mesh_external:
        istio["external"].bool_value = True
    if config:
        istio["config"].string_value = config
    return metadata


@dataclass(slots=True)
class _Built:
    """A cluster with what deriving its subsets needs: how its TLS was chosen."""

    cluster: cluster_pb2.Cluster
    tls_kind: str
    h2: bool
    sni: str = ""
    sans: Sequence[str] = ()
    typed_sans: bool = False
    serialized: bytes = b""

    def copy(self) -> cluster_pb2.Cluster:
        """A copy of the cluster, parsed from its bytes (serialized once for all its subsets):
        cheaper than CopyFrom, which walks the whole message for each copy."""
        if not self.serialized:
            self.serialized = self.cluster.SerializeToString()
        return cluster_pb2.Cluster.FromString(self.serialized)


def _outbound(ctx: ProxyContext, service: Service, port: ServicePort, discovery: int, subset_name: str,
              traffic: TrafficPolicy | None, rule: DestinationRuleView | None, accounts: Sequence[str],
              metadata: base_pb2.Metadata, inferred: str, subset: Subset | None = None) -> _Built | None:
    name = names.outbound_cluster(port.port, service.hostname, subset_name)
    traffic = traffic or TrafficPolicy()
    if traffic.load_balancer is not None and traffic.load_balancer.simple == "PASSTHROUGH":
        discovery = cluster_pb2.Cluster.ORIGINAL_DST
    cluster = cluster_pb2.Cluster(name=name, type=discovery, alt_stat_name=name + ";")
    cluster.common_lb_config.SetInParent()
    if discovery in (cluster_pb2.Cluster.STRICT_DNS, cluster_pb2.Cluster.LOGICAL_DNS):
        if not _dns_load_assignment(ctx, cluster, service, port, subset.labels if subset else None):
            return None
    options = policy.HttpOptions()
    policy.upstream_protocol(options, port.protocol, sidecar=not ctx.proxy.is_router,
                             preserve_case=ctx.headers.preserve_case)
    cluster.metadata.CopyFrom(metadata)
    pool = traffic.connection_pool
    policy.apply_connection_pool(cluster, options, pool, ctx.mesh.connect_timeout, ctx.mesh.tcp_keepalive,
                                 traffic.retry_budget)
    policy.apply_h2_upgrade(options, pool, port.protocol, ctx.mesh.h2_upgrade_policy == "UPGRADE")
    policy.apply_h2_streams(options, pool)
    policy.apply_outlier_detection(cluster, traffic.outlier_detection)
    policy.apply_load_balancer(cluster, traffic.load_balancer, ctx.mesh.locality_lb_setting)
    settings = traffic.tls
    kind, sni, sans = _apply_tls(ctx, cluster, options, service, port, subset_name, settings, accounts, rule, inferred)
    if cluster.type == cluster_pb2.Cluster.ORIGINAL_DST:
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    if cluster.type == cluster_pb2.Cluster.EDS:
        cluster.eds_cluster_config.service_name = name
        cluster.eds_cluster_config.eds_config.CopyFrom(ADS)
    if ctx.proxy.istio_extensions:
        cluster.filters.append(METADATA_EXCHANGE_FILTER)
    options.finish(cluster)
    istio = cluster.metadata.filter_metadata["istio"]
    if rule is not None and settings is not None and settings.mode in ("SIMPLE", "MUTUAL"):
        istio["alpn_override"] = "false"
    if subset_name:
        istio["subset"] = subset_name
    return _Built(cluster, kind, options.is_h2, sni, sans, not ctx.proxy.istio_extensions)


def _derived_subset(base: _Built, service: Service, port: ServicePort, subset_name: str) -> cluster_pb2.Cluster:
    name = names.outbound_cluster(port.port, service.hostname, subset_name)
    cluster = base.copy()
    cluster.name = name
    cluster.alt_stat_name = name + ";"
    cluster.eds_cluster_config.service_name = name
    cluster.metadata.filter_metadata["istio"]["subset"] = subset_name
    sni = base.sni or names.istio_sni(port.port, service.hostname, subset_name)
    if base.tls_kind in ("istio", "auto"):
        # The copied socket is already the TLS one: only its context's SNI differs.
        socket = cluster.transport_socket if base.tls_kind == "istio" else cluster.transport_socket_matches[0].transport_socket
        socket.typed_config.value = tls.istio_mutual_bytes(sni, base.sans, h2=base.h2, metadata_exchange=True,
                                                          typed_sans=base.typed_sans)
    return cluster


def _apply_tls(ctx: ProxyContext, cluster: cluster_pb2.Cluster, options: policy.HttpOptions, service: Service,
               port: ServicePort, subset: str, settings: ClientTLSSettings | None, accounts: Sequence[str],
               rule: DestinationRuleView | None, inferred: str) -> tuple[str, str, Sequence[str]]:
    """Explicit DestinationRule TLS, or auto mTLS when the service's endpoints speak Istio mTLS
    (`inferred`: the mode `_inferred_mode` gives the service).

    Returns how TLS was chosen ("none", "user", "istio", "auto"), a fixed SNI if the rule set
    one, and the SANs, so subset clusters can be derived with their own SNI.
    """
    sni = names.istio_sni(port.port, service.hostname, subset)
    typed = not ctx.proxy.istio_extensions
    if settings is not None:
        mode = settings.mode or "DISABLE"
        if mode == "DISABLE":
            return "none", "", ()
        if mode == "ISTIO_MUTUAL":
            sans = settings.subject_alt_names or accounts
            cluster.transport_socket.CopyFrom(tls.istio_mutual_socket(
                settings.sni or sni, sans, h2=options.is_h2, metadata_exchange=True, typed_sans=typed))
            return "istio", settings.sni, sans
        if settings.credential_name and not ctx.proxy.is_router and not (rule and rule.selector):
            return "none", "", ()  # a sidecar never holds a credential: only gateways are given them
        if mode == "MUTUAL" and not settings.credential_name and not (
            settings.client_certificate and settings.private_key
        ):
            ctx.warnings.append(f"cluster {cluster.name}: MUTUAL TLS needs clientCertificate and privateKey; TLS not applied")
            return "none", "", ()
        context = tls.user_tls(settings, h2=options.is_h2,
                               service_accounts=accounts if not service.from_kubernetes else (), typed_sans=typed)
        if not settings.sni:
            upstream = options.get().upstream_http_protocol_options
            upstream.auto_sni = True
            if not settings.subject_alt_names:
                upstream.auto_san_validation = True
        cluster.transport_socket.CopyFrom(tls.socket(context))
        return "user", "", ()
    if not ctx.mesh.enable_auto_mtls or service.mesh_external:
        return "none", "", ()
    if inferred == DISABLE:
        return "none", "", ()
    transport_socket = tls.istio_mutual_socket(sni, accounts, h2=options.is_h2, metadata_exchange=True, typed_sans=typed)
    if cluster.type == cluster_pb2.Cluster.ORIGINAL_DST:
        cluster.transport_socket.CopyFrom(transport_socket)
        return "istio", "", accounts
    tls.auto_mtls_matches(cluster, transport_socket)
    return "auto", "", accounts


def _inferred_mode(ctx: ProxyContext, service: Service) -> str:
    """Istio's BestEffortInferServiceMTLSMode (workload-level PeerAuthentication is ignored)."""
    if service.resolution == PASSTHROUGH_RESOLUTION:
        endpoints = [ep for port in service.ports for ep in ctx.snapshot.registry.endpoints(service, port)]
        if not endpoints or not all(ep.injected for ep in endpoints):
            return DISABLE
    return ctx.snapshot.mtls_mode(service.namespace)


def _dns_load_assignment(ctx: ProxyContext, cluster: cluster_pb2.Cluster, service: Service, port: ServicePort,
                         labels: Mapping[str, str] | None) -> bool:
    """DNS clusters carry their endpoints inline; without endpoints Istio omits the cluster."""
    endpoints = [
        ep for ep in ctx.snapshot.registry.endpoints(service, port)
        if not labels or all(ep.labels.get(k) == v for k, v in labels.items())
    ]
    if not endpoints and not _lists_endpoints(service) and not labels:
        target = port.target_port if isinstance(port.target_port, int) else port.port
        addresses = [(service.hostname, target)]
    else:
        addresses = [(ep.address, ep.port) for ep in endpoints]
    if not addresses:
        return False
    _dns_settings(ctx, cluster)
    assignment = cluster.load_assignment
    assignment.cluster_name = cluster.name
    group = assignment.endpoints.add()
    group.locality.SetInParent()
    for address, number in addresses:
        lb = group.lb_endpoints.add()
        set_address(lb.endpoint.address, address, number)
        lb.load_balancing_weight.value = 1
    group.load_balancing_weight.value = len(addresses)
    return True


def _dns_settings(ctx: ProxyContext, cluster: cluster_pb2.Cluster) -> None:
    """How a DNS cluster resolves: IPv4, the mesh's dnsRefreshRate, the records' TTLs, 100 ms of
    jitter, c-ares with 100 queries in flight. Istio sets these on the Cluster itself, which its
    proxy build takes silently; plain Envoy has deprecated those fields, so for it they go into
    the `envoy.clusters.dns` cluster type that replaces them (LOGICAL_DNS being its
    `all_addresses_in_single_endpoint`)."""
    resolver = cares_dns_resolver_pb2.CaresDnsResolverConfig()
    resolver.udp_max_queries.value = 100
    if ctx.proxy.istio_extensions:
        target: Any = cluster
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_ONLY
    else:
        target = dns_cluster_pb2.DnsCluster(all_addresses_in_single_endpoint=cluster.type == cluster_pb2.Cluster.LOGICAL_DNS)
        target.dns_lookup_family = dns_pb2.V4_ONLY
    set_duration(target.dns_refresh_rate, ctx.mesh.dns_refresh_rate)
    target.respect_dns_ttl = True
    target.dns_jitter.CopyFrom(duration(0.1))
    target.typed_dns_resolver_config.name = "envoy.network.dns_resolver.cares"
    target.typed_dns_resolver_config.typed_config.CopyFrom(typed(resolver))
    if not ctx.proxy.istio_extensions:
        cluster.cluster_type.name = DNS_CLUSTER_TYPE
        cluster.cluster_type.typed_config.CopyFrom(typed(target))


def _lists_endpoints(service: Service) -> bool:
    """Whether a ServiceEntry names its endpoints (then none selected means none, not its host)."""
    entry = service.source.view
    return isinstance(entry, ServiceEntry) and bool(entry.endpoints)


def blackhole_cluster(ctx: ProxyContext) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(name=BLACKHOLE, type=cluster_pb2.Cluster.STATIC,
                                  lb_policy=cluster_pb2.Cluster.ROUND_ROBIN, alt_stat_name=BLACKHOLE + ";")
    set_duration(cluster.connect_timeout, ctx.mesh.connect_timeout)
    return cluster


def _passthrough_options() -> http_protocol_options_pb2.HttpProtocolOptions:
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.common_http_protocol_options.idle_timeout.seconds = 300
    downstream = options.use_downstream_protocol_config
    downstream.http_protocol_options.SetInParent()
    downstream.http2_protocol_options.SetInParent()
    return options


def passthrough_cluster(ctx: ProxyContext, name: str = PASSTHROUGH) -> cluster_pb2.Cluster:
    """Traffic to destinations the mesh does not know goes where the client sent it."""
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.ORIGINAL_DST,
                                  lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED, alt_stat_name=name + ";")
    set_duration(cluster.connect_timeout, ctx.mesh.connect_timeout)
    cluster.typed_extension_protocol_options[HTTP_OPTIONS_KEY].CopyFrom(typed(_passthrough_options()))
    policy.set_default_circuit_breakers(cluster)
    if name == PASSTHROUGH:
        policy.apply_keepalive(cluster, ctx.mesh.tcp_keepalive, None)
    if name == PASSTHROUGH and ctx.proxy.istio_extensions:
        cluster.filters.append(METADATA_EXCHANGE_FILTER)
    return cluster


def inbound_passthrough_cluster(ctx: ProxyContext) -> cluster_pb2.Cluster:
    cluster = passthrough_cluster(ctx, INBOUND_PASSTHROUGH)
    _bind(cluster.upstream_bind_config.source_address, INBOUND_BIND)
    return cluster


def _bind(target: address_pb2.SocketAddress, address: str) -> None:
    target.address = address
    target.port_value = 0


def inbound_cluster(ctx: ProxyContext, port: InboundPort) -> cluster_pb2.Cluster:
    """`inbound|P||`: to the application on its own port (ORIGINAL_DST from 127.0.0.6), or to a
    Sidecar ingress defaultEndpoint or, with the mesh's inboundTrafficPolicy LOCALHOST, to
    loopback (STATIC)."""
    name = names.inbound_cluster(port.target_port)
    cluster = cluster_pb2.Cluster(name=name, alt_stat_name=name + ";")
    cluster.common_lb_config.SetInParent()
    endpoint = _default_endpoint(ctx, port)
    if endpoint is None and ctx.mesh.inbound_mode == LOCALHOST_POLICY:
        # inboundTrafficPolicy LOCALHOST: to the application on loopback, not to the original
        # destination, so an application listening on 127.0.0.1 only is reachable.
        endpoint = address_pb2.Address()
        set_address(endpoint, LOCALHOST_V6 if ":" in ctx.proxy.ip else LOCALHOST, port.target_port)
    if endpoint is not None:
        cluster.type = cluster_pb2.Cluster.STATIC
        cluster.load_assignment.cluster_name = name
        group = cluster.load_assignment.endpoints.add()
        group.lb_endpoints.add().endpoint.address.CopyFrom(endpoint)
    else:
        cluster.type = cluster_pb2.Cluster.ORIGINAL_DST
        cluster.cleanup_interval.seconds = MAX_CLEANUP_SECONDS
    options = policy.HttpOptions()
    policy.upstream_protocol(options, port.protocol, sidecar=True, preserve_case=ctx.headers.preserve_case)
    services = [
        {"host": service.hostname, "name": service.name, "namespace": service.namespace}
        for service, _ in port.services
    ]
    if services:
        istio_metadata(cluster.metadata, {"services": services})
    pool = budget = None
    if port.services:
        first, service_port = port.services[0]
        rule = ctx.rule_for(first)
        resolved = policy.for_port(rule.traffic_policy, service_port.port) if rule is not None else None
        if rule is not None and resolved is not None:
            pool, budget = resolved.connection_pool, resolved.retry_budget
            istio_metadata(cluster.metadata, {"config": config_path(rule.resource)})
    sidecar_pool = _sidecar_connection_pool(ctx, port.target_port)
    if sidecar_pool is not None:
        pool = sidecar_pool  # over the rule's pool; its retry budget stays
    policy.apply_connection_pool(cluster, options, pool, ctx.mesh.connect_timeout, ctx.mesh.tcp_keepalive, budget)
    if cluster.type == cluster_pb2.Cluster.ORIGINAL_DST:
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
        _bind(cluster.upstream_bind_config.source_address, INBOUND_BIND)
    options.finish(cluster)
    return cluster


def _default_endpoint(ctx: ProxyContext, port: InboundPort) -> address_pb2.Address | None:
    """Where a Sidecar ingress defaultEndpoint sends traffic, as Istio builds the endpoint:
    `0.0.0.0:PORT` is the proxy's IPv4 address and `[::]:PORT` its IPv6 one (loopback when it
    has none), `127.0.0.1`/`[::1]` loopback, `unix://PATH` a socket."""
    endpoint = port.default_endpoint
    if not endpoint:
        return None
    address = address_pb2.Address()
    if endpoint.startswith("unix://"):
        set_address(address, endpoint, 0)
        return address
    host, number = split_host_port(endpoint) or ("", "0")
    ipv6 = ":" in ctx.proxy.ip
    if host == "0.0.0.0":
        host = ctx.proxy.ip if ctx.proxy.ip and not ipv6 else LOCALHOST
    elif host == "::":
        host = ctx.proxy.ip if ipv6 else LOCALHOST_V6
    elif not host:
        host = LOCALHOST
    set_address(address, host, int(number))
    return address


def _sidecar_connection_pool(ctx: ProxyContext, port: int) -> ConnectionPoolSettings | None:
    """A Sidecar's pool for one inbound port: its ingress listener's, else the Sidecar-wide one."""
    for entry in ctx.scope.ingress:
        if entry.port.number == port and entry.connection_pool is not None:
            return entry.connection_pool
    return ctx.scope.inbound_connection_pool
