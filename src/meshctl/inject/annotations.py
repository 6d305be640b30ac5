"""The pod annotations injection reads, and Istio's checks of their values.

Istio's injector refuses a pod whose annotations it cannot use, rather than inject a sidecar
that captures the wrong traffic: `invalid value 'V' for annotation 'NAME': REASON`, one message
per bad annotation. The reasons are Istio's own words, Go's parse errors included, so that a
message found in Istio's documentation or issues matches meshctl's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from meshctl.capture.config import parse_cidr
from meshctl.inject.proxyconfig import ProxyConfigError, parse_annotation
from meshctl.model.injection import INJECT_LABEL, REVISION_LABEL

__all__ = [
    "AGENT_LOG_LEVEL",
    "COMPONENT_LOG_LEVEL",
    "DEFAULT_CONTAINER",
    "DEFAULT_LOGS_CONTAINER",
    "EXCLUDE_INBOUND_PORTS",
    "EXCLUDE_INTERFACES",
    "EXCLUDE_OUTBOUND_IP_RANGES",
    "EXCLUDE_OUTBOUND_PORTS",
    "INCLUDE_INBOUND_PORTS",
    "INCLUDE_OUTBOUND_IP_RANGES",
    "INCLUDE_OUTBOUND_PORTS",
    "INJECT",
    "INTERCEPTION_MODE",
    "KUBEVIRT_INTERFACES",
    "LOG_LEVEL",
    "MERGE_METRICS",
    "NATIVE_SIDECAR",
    "OVERRIDES",
    "PROXY_CONFIG",
    "PROXY_CPU",
    "PROXY_CPU_LIMIT",
    "PROXY_IMAGE",
    "PROXY_MEMORY",
    "PROXY_MEMORY_LIMIT",
    "READINESS_FAILURE_THRESHOLD",
    "READINESS_INITIAL_DELAY",
    "READINESS_PERIOD",
    "REROUTE_VIRTUAL_INTERFACES",
    "REVISION",
    "STATUS",
    "STATUS_PORT",
    "VALIDATORS",
    "annotation_problems",
]

INJECT = INJECT_LABEL
STATUS = "sidecar.istio.io/status"
INTERCEPTION_MODE = "sidecar.istio.io/interceptionMode"
NATIVE_SIDECAR = "sidecar.istio.io/nativeSidecar"
PROXY_CONFIG = "proxy.istio.io/config"
OVERRIDES = "proxy.istio.io/overrides"
PROXY_IMAGE = "sidecar.istio.io/proxyImage"
LOG_LEVEL = "sidecar.istio.io/logLevel"
COMPONENT_LOG_LEVEL = "sidecar.istio.io/componentLogLevel"
AGENT_LOG_LEVEL = "sidecar.istio.io/agentLogLevel"
STATUS_PORT = "status.sidecar.istio.io/port"
READINESS_INITIAL_DELAY = "readiness.status.sidecar.istio.io/initialDelaySeconds"
READINESS_PERIOD = "readiness.status.sidecar.istio.io/periodSeconds"
READINESS_FAILURE_THRESHOLD = "readiness.status.sidecar.istio.io/failureThreshold"
INCLUDE_OUTBOUND_IP_RANGES = "traffic.sidecar.istio.io/includeOutboundIPRanges"
EXCLUDE_OUTBOUND_IP_RANGES = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
INCLUDE_INBOUND_PORTS = "traffic.sidecar.istio.io/includeInboundPorts"
EXCLUDE_INBOUND_PORTS = "traffic.sidecar.istio.io/excludeInboundPorts"
INCLUDE_OUTBOUND_PORTS = "traffic.sidecar.istio.io/includeOutboundPorts"
EXCLUDE_OUTBOUND_PORTS = "traffic.sidecar.istio.io/excludeOutboundPorts"
EXCLUDE_INTERFACES = "traffic.sidecar.istio.io/excludeInterfaces"
KUBEVIRT_INTERFACES = "traffic.sidecar.istio.io/kubevirtInterfaces"
REROUTE_VIRTUAL_INTERFACES = "istio.io/reroute-virtual-interfaces"
MERGE_METRICS = "prometheus.istio.io/merge-metrics"
PROXY_CPU = "sidecar.istio.io/proxyCPU"
PROXY_MEMORY = "sidecar.istio.io/proxyMemory"
PROXY_CPU_LIMIT = "sidecar.istio.io/proxyCPULimit"
PROXY_MEMORY_LIMIT = "sidecar.istio.io/proxyMemoryLimit"
REVISION = REVISION_LABEL
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
DEFAULT_LOGS_CONTAINER = "kubectl.kubernetes.io/default-logs-container"

# Kubernetes' resource.Quantity grammar (sign, digits, suffix or exponent).
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_SUFFIXES = frozenset({"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"})
_GO_BOOLEANS = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"})


def _parse_uint(value: str, bits: int) -> str | None:
    """Go's strconv.ParseUint error for `value`, or None when it parses."""
    if not value or not value.isascii() or not value.isdigit():
        return f'strconv.ParseUint: parsing "{value}": invalid syntax'
    if int(value) >= 1 << bits:
        return f'strconv.ParseUint: parsing "{value}": value out of range'
    return None


def _port(text: str) -> str | None:
    problem = _parse_uint(text.strip(), 16)
    return f"failed parsing port '{text}': {problem}" if problem else None


def _port_list(parameter: str, ports: str) -> str | None:
    text = ports.strip()
    if not text:
        return None
    for item in text.split(","):
        problem = _port(item)
        if problem:
            return f"{parameter} invalid: failed parsing port '{item}': {problem}"
    return None


def _cidr_list(parameter: str, cidrs: str) -> str | None:
    for cidr in cidrs.split(",") if cidrs else ():
        if parse_cidr(cidr) is None:
            return f"{parameter} invalid: failed parsing cidr '{cidr}': {_prefix_problem(cidr)}"
    return None


def _prefix_problem(cidr: str) -> str:
    """Go's netip.ParsePrefix error, for a CIDR parse_cidr refused."""
    address, slash, bits = cidr.partition("/")
    if not slash:
        return f'netip.ParsePrefix("{cidr}"): no \'/\''
    if parse_cidr(f"{address}/0") is None:
        return f'netip.ParsePrefix("{cidr}"): ParseAddr("{address}"): unable to parse IP'
    if not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        return f'netip.ParsePrefix("{cidr}"): bad bits after slash: "{bits}"'
    return f'netip.ParsePrefix("{cidr}"): prefix length out of range'


def _interception_mode(mode: str) -> str | None:
    if mode in ("REDIRECT", "TPROXY", "NONE"):
        return None
    return f"interceptionMode invalid, use REDIRECT,TPROXY,NONE: {mode}"


def _status_port(port: str) -> str | None:
    problem = _port(port)
    return f"excludeInboundPorts invalid: {problem}" if problem else None  # sic: Istio's wording


def _include_ip_ranges(ranges: str) -> str | None:
    return None if ranges == "*" else _cidr_list("includeIPRanges", ranges)


def _include_inbound_ports(ports: str) -> str | None:
    return None if ports == "*" else _port_list("includeInboundPorts", ports)


def _boolean(value: str) -> str | None:
    return None if value in _GO_BOOLEANS else f'strconv.ParseBool: parsing "{value}": invalid syntax'


def _proxy_config(value: str) -> str | None:
    try:
        parse_annotation(value)
    except ProxyConfigError as exc:
        return str(exc)
    return None


def _quantity(value: str) -> str | None:
    match = _QUANTITY.match(value)
    if match and match.group(1).count(".") <= 1 and match.group(1).strip("+-.") and _suffix_ok(match.group(2)):
        return None
    return "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def _suffix_ok(suffix: str) -> bool:
    if suffix in _SUFFIXES:
        return True
    return bool(re.fullmatch(r"[eE][-+]?[0-9]+", suffix))


VALIDATORS: Mapping[str, Callable[[str], str | None]] = {
    INTERCEPTION_MODE: _interception_mode,
    STATUS_PORT: _status_port,
    READINESS_INITIAL_DELAY: lambda value: _parse_uint(value, 32),
    READINESS_PERIOD: lambda value: _parse_uint(value, 32),
    READINESS_FAILURE_THRESHOLD: lambda value: _parse_uint(value, 32),
    INCLUDE_OUTBOUND_IP_RANGES: _include_ip_ranges,
    EXCLUDE_OUTBOUND_IP_RANGES: lambda ranges: _cidr_list("excludeIPRanges", ranges),
    INCLUDE_INBOUND_PORTS: _include_inbound_ports,
    EXCLUDE_INBOUND_PORTS: lambda ports: _port_list("excludeInboundPorts", ports),
    EXCLUDE_OUTBOUND_PORTS: lambda ports: _port_list("excludeOutboundPorts", ports),
    MERGE_METRICS: _boolean,
    PROXY_CONFIG: _proxy_config,
    PROXY_CPU: _quantity,
    PROXY_MEMORY: _quantity,
    PROXY_CPU_LIMIT: _quantity,
    PROXY_MEMORY_LIMIT: _quantity,
}


def annotation_problems(annotations: Mapping[str, str]) -> list[tuple[str, str]]:
    """(annotation, message) for every annotation Istio's injector would refuse, by name."""
    problems = []
    for name in sorted(annotations):
        check = VALIDATORS.get(name)
        value = annotations[name]
        reason = check(value) if check is not None and isinstance(value, str) else None
        if reason:
            problems.append((name, f"invalid value '{value}' for annotation '{name}': {reason}"))
    return problems
