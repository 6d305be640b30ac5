"""What a sidecar's security policies add to its inbound chains: the filters of its
AuthorizationPolicies (RBAC, and ext_authz for CUSTOM) and RequestAuthentications (jwt_authn).

HTTP chains run them in Istio's order, after metadata exchange and before everything else:
CUSTOM (shadow RBAC + ext_authz), jwt_authn, then AUDIT, DENY and ALLOW RBAC. TCP chains carry
the network RBAC (and ext_authz) filters before their tcp_proxy. Outbound chains carry none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from meshctl.generate.authn import jwt_filter
from meshctl.generate.authz import build_filters
from meshctl.generate.context import ProxyContext
from meshctl.model.security import authorization_policies, jwt_rules

__all__ = ["InboundPolicy", "inbound_policy"]


@dataclass(frozen=True, slots=True)
class InboundPolicy:
    """The filters an inbound HTTP chain's HCM and an inbound TCP chain get from policy."""

    http: tuple[hcm_pb2.HttpFilter, ...] = ()
    tcp: tuple[lc.Filter, ...] = ()


def inbound_policy(ctx: ProxyContext) -> InboundPolicy:
    """The proxy's policy filters, computed once per (policies, proxy namespace and labels)."""
    snapshot, proxy = ctx.snapshot, ctx.proxy
    if not snapshot.authorization_policies and not snapshot.request_authentications:
        return InboundPolicy()
    workload = proxy.workload
    labels = workload.labels if workload is not None else proxy.labels
    key = ("inbound-policy", snapshot.versions_of("AuthorizationPolicy", "RequestAuthentication", "Service",
                                                  "ServiceEntry"), snapshot.mesh_key, proxy.namespace,
           tuple(sorted(labels.items())))
    return ctx.memo(key, lambda: _build(ctx, labels))


def _build(ctx: ProxyContext, labels: Mapping[str, str]) -> InboundPolicy:
    snapshot, proxy, mesh = ctx.snapshot, ctx.proxy, ctx.snapshot.mesh
    registry = snapshot.registry

    def namespaces_of(host: str) -> Sequence[str]:
        return sorted({service.namespace for service in registry.services_for_host(host)})

    def service_of(host: str) -> object | None:
        found = registry.services_for_host(host)
        return found[0] if found else None

    policies = authorization_policies(snapshot.authorization_policies, proxy.namespace, labels, mesh.root_namespace)
    authz = build_filters(policies, bundle=mesh.trust_domains, providers=mesh.extension_providers,
                          lookup=namespaces_of)
    jwt = jwt_filter(jwt_rules(snapshot.request_authentications, proxy.namespace, labels, mesh.root_namespace),
                     service_of)
    ctx.warnings.extend(f"{proxy.id}: {warning}" for warning in authz.warnings)
    http = list(authz.http_custom)
    if jwt is not None:
        http.append(jwt.filter)
        ctx.warnings.extend(f"{proxy.id}: RequestAuthentication: {warning}" for warning in jwt.warnings)
    http.extend(authz.http)
    return InboundPolicy(tuple(http), authz.tcp)
