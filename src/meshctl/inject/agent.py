"""The command lines of the two injected containers, kept together so that a change to
`meshctl agent`'s or `meshctl iptables`' flags is made here once.

The image's entrypoint is `meshctl`, so, as Istio's `args: [istio-iptables, ...]` and
`args: [proxy, sidecar, ...]` name pilot-agent's subcommands, these name meshctl's. Values the
pod only knows when it runs (its name, IP, service account) come from the container's
environment through Kubernetes' `$(VAR)` expansion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshctl.inject import annotations as ann
from meshctl.inject.proxyconfig import ProxyConfig
from meshctl.inject.settings import PROXY_UID, READINESS_PORT, InjectSettings

__all__ = [
    "CA_ROOT_CERT",
    "Capture",
    "SDS_SOCKET",
    "TOKEN_FILE",
    "WORKDIR",
    "agent_args",
    "agent_log_level",
    "iptables_args",
    "local_exclude_ports",
]

# Where the injected volumes put what the agent reads and writes (see sidecar.VOLUMES).
TOKEN_FILE = "/var/run/secrets/tokens/istio-token"
CA_ROOT_CERT = "/var/run/secrets/istio/root-cert.pem"
SDS_SOCKET = "/var/run/secrets/workload-spiffe-uds/socket"
WORKDIR = "/etc/istio/proxy"
_AGENT_LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "warning": "warning", "error": "error",
                     "fatal": "error", "none": "error"}


@dataclass(frozen=True, slots=True)
class Capture:
    """How the pod's traffic is captured, once annotations and settings are read."""

    mode: str
    status_port: int


def iptables_args(settings: InjectSettings, annotations: Mapping[str, str], capture: Capture) -> list[str]:
    """istio-init's arguments, derived from the pod as Istio's injection template derives
    istio-iptables' (kubernetes-and-capture §3.4), for `meshctl iptables`."""
    mesh = settings.mesh

    def pick(name: str, default: str) -> str:
        return annotations.get(name, default)

    args = [
        "iptables",
        "-p", str(mesh.proxy_listen_port),
        "-z", str(mesh.proxy_inbound_listen_port),
        "-u", str(PROXY_UID),
        "-m", capture.mode,
        "-i", pick(ann.INCLUDE_OUTBOUND_IP_RANGES, settings.include_ip_ranges),
        "-x", pick(ann.EXCLUDE_OUTBOUND_IP_RANGES, settings.exclude_ip_ranges),
        "-b", pick(ann.INCLUDE_INBOUND_PORTS, settings.include_inbound_ports),
        "-d", local_exclude_ports(annotations.get(ann.STATUS_PORT, str(capture.status_port)),
                                  pick(ann.EXCLUDE_INBOUND_PORTS, settings.exclude_inbound_ports)),
    ]  # fmt: skip
    if ann.INCLUDE_OUTBOUND_PORTS in annotations or settings.include_outbound_ports:
        args += ["-q", pick(ann.INCLUDE_OUTBOUND_PORTS, settings.include_outbound_ports)]
    if ann.EXCLUDE_OUTBOUND_PORTS in annotations or settings.exclude_outbound_ports:
        args += ["-o", pick(ann.EXCLUDE_OUTBOUND_PORTS, settings.exclude_outbound_ports)]
    for name in (ann.REROUTE_VIRTUAL_INTERFACES, ann.KUBEVIRT_INTERFACES):
        if name in annotations:
            args += ["-k", annotations[name]]
            break
    if ann.EXCLUDE_INTERFACES in annotations:
        args += ["-c", annotations[ann.EXCLUDE_INTERFACES]]
    args.append(f"--log_output_level={pick(ann.AGENT_LOG_LEVEL, settings.agent_log_level)}")
    return args


def local_exclude_ports(status_port: str, excluded: str) -> str:
    """`-d`: Envoy's Prometheus and readiness ports, then the pod's excluded inbound ports with
    the status port added unless it is there already, empty or 0 (Istio's excludeInboundPort)."""
    port = status_port.strip()
    if not port or port == "0":
        ports = excluded
    elif port in excluded.split(","):
        ports = excluded
    else:
        ports = ",".join([*(item.strip() for item in excluded.split(",") if item.strip()), port])
    return f"15090,15021,{ports}" if ports else "15090,15021"


def agent_args(settings: InjectSettings, annotations: Mapping[str, str], labels: Mapping[str, str],
               capture: Capture, proxy_config: ProxyConfig) -> list[str]:
    """istio-proxy's arguments: `meshctl agent` for this pod, with the identity, the control
    plane and the paths of the injected volumes."""
    args = [
        "agent", "$(POD_NAME).$(POD_NAMESPACE)",
        "--xds-address", settings.xds_address,
        "--ca-address", settings.ca_address,
        "--ca-root-cert", CA_ROOT_CERT,
        "--token-file", TOKEN_FILE,
        "--service-account", "$(SERVICE_ACCOUNT)",
        "--ip", "$(INSTANCE_IP)",
        "--labels", ",".join(f"{key}={value}" for key, value in sorted(labels.items())),
        "--trust-domain", settings.mesh.trust_domain,
        "--status-port", str(READINESS_PORT),
        "--sds-socket", SDS_SOCKET,
        "--workdir", WORKDIR,
        "--interception-mode", capture.mode,
        "--proxy-log-level", annotations.get(ann.LOG_LEVEL, settings.log_level),
        "--log-level", agent_log_level(annotations.get(ann.AGENT_LOG_LEVEL, settings.agent_log_level)),
    ]  # fmt: skip
    if proxy_config.concurrency:
        args += ["--concurrency", str(proxy_config.concurrency)]
    if proxy_config.termination_drain_duration:
        args += ["--termination-drain-duration", proxy_config.termination_drain_duration]
    return args


def agent_log_level(scopes: str) -> str:
    """The agent's level from Istio's `scope:level,...` form: the `default` scope's (or a
    bare level), `info` when neither is given."""
    for item in scopes.split(","):
        scope, _, level = item.strip().rpartition(":")
        if scope in ("", "default") and level in _AGENT_LOG_LEVELS:
            return _AGENT_LOG_LEVELS[level]
    return "info"
