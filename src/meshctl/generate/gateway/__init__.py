"""Gateways (node type `router`): what istiod sends an ingress or egress gateway.

A gateway has no inbound side and captures nothing: its listeners are exactly the ports of the
servers of the Gateways that select it (merged in meshctl.model.gateway), its routes the
VirtualServices bound to those Gateways, its clusters every service exported to its namespace,
and its secrets the certificates its servers' `credentialName`s name.
"""

from __future__ import annotations

from meshctl.generate.clusters import build_outbound_clusters
from meshctl.generate.cache import GenerationCache
from meshctl.generate.context import ProxyContext
from meshctl.generate.endpoints import build_endpoints
from meshctl.generate.gateway.autopassthrough import sni_dnat_clusters, sni_dnat_endpoints
from meshctl.generate.gateway.listeners import gateway_listeners
from meshctl.generate.routebytes import AssembledRoutes
from meshctl.generate.gateway.routes import gateway_route_configuration
from meshctl.generate.gateway.secrets import gateway_secrets
from meshctl.generate.gateway.tls import credential_resource
from meshctl.generate.proxy import ProxyConfig
from meshctl.model.gateway import SERVICE_ACCOUNT_ANNOTATION, MergedGateway, ServiceTarget, merge_gateways, select_gateways, service_targets
from meshctl.model.service import Service, ServicePort
from meshctl.resources.consistency import secret_configs

__all__ = ["build_router", "merged_gateway"]


def targets_of(ctx: ProxyContext) -> list[ServiceTarget]:
    """The service ports that reach this gateway's pod."""
    registry = ctx.snapshot.registry
    endpoints: dict[Service, list[tuple[ServicePort, str, int]]] = {}
    for service in registry.services:
        if not service.from_kubernetes:
            endpoints[service] = [(port, ep.address, ep.port) for port in service.ports
                                  for ep in registry.endpoints(service, port)]
    return service_targets(registry.services, endpoints, ctx.proxy.workload, ctx.proxy.ip)


def merged_gateway(ctx: ProxyContext) -> MergedGateway:
    """The Gateways that select this gateway, merged."""
    selected = select_gateways(ctx.snapshot.gateways, ctx.proxy.labels, targets_of(ctx))
    return merge_gateways(selected)


def build_router(ctx: ProxyContext, cache: GenerationCache | None) -> ProxyConfig:
    """Everything a gateway holds (its listeners, routes, clusters, endpoints and the secrets
    it is sent over SDS), in push order within each kind; listeners and route configurations
    sorted by name (Istio's order is a map's)."""
    merged = merged_gateway(ctx)
    ctx.warnings.extend(merged.warnings)
    secrets: dict[str, None] = {}
    listeners = gateway_listeners(ctx, merged, secrets)
    routes = [AssembledRoutes.of(gateway_route_configuration(ctx, merged, name)) for name in sorted(ctx.route_names)]
    clusters = build_outbound_clusters(ctx)
    endpoints = build_endpoints(ctx, clusters)
    if merged.has_auto_passthrough:
        hosts = sorted({host.partition("/")[2] if "/" in host else host for host in merged.auto_passthrough_hosts})
        dnat = sni_dnat_clusters(ctx, hosts, clusters)
        clusters = clusters + dnat
        endpoints = endpoints + sni_dnat_endpoints(dnat, endpoints)
    for _, config in secret_configs(clusters, []):
        if config.sds_config.HasField("ads"):
            secrets.setdefault(config.name, None)
    served = gateway_secrets(ctx, secrets, _service_accounts(merged))
    return ProxyConfig(clusters, endpoints, listeners, routes, list(dict.fromkeys(ctx.warnings)), cache,
                       secrets=served)


def _service_accounts(merged: MergedGateway) -> dict[str, str]:
    """The service account a credential's Gateway requires of the gateway using it (Gateways
    made of Gateway API Gateways Istio deploys name theirs), by SDS resource name."""
    out: dict[str, str] = {}
    for entry in merged.servers.values():
        for server in entry.servers:
            account = server.resource.annotations.get(SERVICE_ACCOUNT_ANNOTATION)
            tls = server.tls
            if not account or tls is None:
                continue
            for name in (*tls.credential_names, tls.credential_name, tls.ca_cert_credential_name):
                if name:
                    out[credential_resource(name)] = account
    return out
