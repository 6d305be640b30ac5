"""The proxy a config is generated for: identity, labels, interception mode, capabilities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshctl.model.service import Workload

SIDECAR = "sidecar"
ROUTER = "router"
INTERCEPTION_REDIRECT = "REDIRECT"
INTERCEPTION_TPROXY = "TPROXY"
INTERCEPTION_NONE = "NONE"
ISTIO_VERSION = "1.30.0"

# Extensions that only istio-proxy builds carry; plain Envoy rejects configs that use them.
ISTIO_EXTENSIONS = frozenset({"istio.metadata_exchange", "istio.alpn", "istio.stats"})


@dataclass(frozen=True, slots=True)
class Proxy:
    """Everything generation reads about one proxy.

    `istio_extensions` says whether the proxy is an istio-proxy build: Istio's own filters
    (metadata exchange, ALPN override) are emitted only for proxies that can load them, so the
    same generator drives both istio-proxy sidecars and the plain Envoy that meshctl runs.
    """

    id: str
    namespace: str
    ip: str
    type: str = SIDECAR
    dns_domain: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    interception: str = INTERCEPTION_REDIRECT
    istio_version: str = ISTIO_VERSION
    cluster_id: str = "Kubernetes"
    workload: Workload | None = None
    istio_extensions: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pod_name(self) -> str:
        return self.id.rsplit(".", 1)[0]

    @property
    def node_id(self) -> str:
        return f"{self.type}~{self.ip}~{self.id}~{self.dns_domain}"

    @property
    def captures_traffic(self) -> bool:
        return self.interception != INTERCEPTION_NONE


INTERCEPTION_ANNOTATION = "sidecar.istio.io/interceptionMode"


def for_workload(workload: Workload, *, interception: str | None = None,
                 istio_extensions: bool = False, domain: str = "cluster.local") -> Proxy:
    """The sidecar of a workload, as the injector would configure it: the interception mode
    comes from the pod's `sidecar.istio.io/interceptionMode` annotation unless given."""
    if interception is None:
        interception = workload.annotations.get(INTERCEPTION_ANNOTATION, INTERCEPTION_REDIRECT)
    return Proxy(
        id=workload.proxy_id,
        namespace=workload.namespace,
        ip=workload.ip,
        dns_domain=f"{workload.namespace}.svc.{domain}",
        labels=dict(workload.labels),
        interception=interception,
        workload=workload,
        istio_extensions=istio_extensions,
    )
