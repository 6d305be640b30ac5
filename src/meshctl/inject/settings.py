"""What injection is configured with: the image, where the control plane is, and the Helm
values and mesh config Istio's injector reads (`global.proxy`, `meshConfig.defaultConfig`).

Defaults are those of Istio's chart (`values.yaml`) and mesh (`pkg/config/mesh`), so a pod
injected with no settings gets what `istioctl kube-inject` gives it against a default install.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshctl.errors import BadInputError
from meshctl.inject.proxyconfig import ProxyConfigError, parse_fields
from meshctl.model.meshconfig import MeshConfig

__all__ = [
    "CA_PORT",
    "DEFAULT_IMAGE",
    "InjectSettings",
    "PROMETHEUS_PORT",
    "PROXY_UID",
    "READINESS_PORT",
    "Readiness",
    "Resources",
    "XDS_PORT",
    "check_mesh",
]

DEFAULT_IMAGE = "ghcr.io/meshctl/meshctl:0.1.0"
PROXY_UID = 1337
XDS_PORT = 15010
CA_PORT = 15012
READINESS_PORT = 15021
PROMETHEUS_PORT = 15090


@dataclass(frozen=True, slots=True)
class Resources:
    """`global.proxy.resources`: requests and limits of istio-init and istio-proxy."""

    cpu: str = "100m"
    memory: str = "128Mi"
    cpu_limit: str = "2"
    memory_limit: str = "1Gi"


@dataclass(frozen=True, slots=True)
class Readiness:
    """`global.proxy.readiness*`: the sidecar's readiness probe timing."""

    initial_delay: int = 0
    period: int = 15
    failure_threshold: int = 4


@dataclass(frozen=True, slots=True)
class InjectSettings:
    """Everything but the pod that decides what is injected."""

    image: str = DEFAULT_IMAGE
    istio_namespace: str = "istio-system"
    revision: str = ""
    cluster_id: str = "Kubernetes"
    network: str = ""
    mesh: MeshConfig = field(default_factory=MeshConfig)
    include_ip_ranges: str = "*"
    exclude_ip_ranges: str = ""
    include_inbound_ports: str = "*"
    exclude_inbound_ports: str = ""
    include_outbound_ports: str = ""
    exclude_outbound_ports: str = ""
    log_level: str = "warning"
    component_log_level: str = "misc:error"
    agent_log_level: str = "default:info"
    resources: Resources = field(default_factory=Resources)
    readiness: Readiness = field(default_factory=Readiness)
    startup_probe: bool = True
    native_sidecars: bool = False

    @property
    def control_plane(self) -> str:
        """The Service sidecars reach the control plane through: `istiod[-REV].NS.svc`."""
        name = f"istiod-{self.revision}" if self.revision else "istiod"
        return f"{name}.{self.istio_namespace}.svc"

    @property
    def xds_address(self) -> str:
        return f"{self.control_plane}:{XDS_PORT}"

    @property
    def ca_address(self) -> str:
        return f"{self.control_plane}:{CA_PORT}"

    @property
    def revision_name(self) -> str:
        """The revision as labels and the status annotation name it: `default` when none."""
        return self.revision or "default"


def check_mesh(mesh: MeshConfig, source: str) -> None:
    """Refuse a mesh config whose `defaultConfig` no proxy could run with, naming `source`."""
    try:
        parse_fields(mesh.default_config.fields)
    except ProxyConfigError as exc:
        raise BadInputError([f"{source}: defaultConfig: {exc}"]) from None
