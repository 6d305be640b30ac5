"""Mesh-wide settings that shape every proxy's config, with istiod's code defaults."""

from __future__ import annotations

from dataclasses import dataclass

from meshctl.hostnames import DEFAULT_DOMAIN


@dataclass(frozen=True, slots=True)
class MeshConfig:
    """The subset of Istio's MeshConfig the translator reads (translation-spec §9.1).

    Defaults are istiod's code defaults, not a Helm profile's: no metrics provider (so no
    `istio.stats` filters) and no access log.
    """

    trust_domain: str = DEFAULT_DOMAIN
    domain: str = DEFAULT_DOMAIN
    root_namespace: str = "istio-system"
    connect_timeout_seconds: int = 10
    outbound_policy: str = "ALLOW_ANY"
    inbound_policy: str = "PASSTHROUGH"
    enable_auto_mtls: bool = True
    proxy_listen_port: int = 15001
    proxy_inbound_listen_port: int = 15006
    locality_lb_enabled: bool = True
    h2_upgrade: bool = False
    dns_refresh_rate_seconds: int = 60
    enable_tracing: bool = True
    cluster_id: str = "Kubernetes"
    transport_socket_connect_timeout_seconds: int = 15