"""Field types shared by several kinds: durations, ports, labels, string matches, selectors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from meshctl.config.messages import Message, Parse, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import INT32_MAX, INT32_MIN, UINT32_MAX, Enum, Int, List, Map, Report, Str
from meshctl.config.values import (
    MAX_DURATION_TEXT,
    duration_nanos,
    fqdn_problem,
    is_cidr,
    is_ip,
    label_key_problem,
    label_value_problem,
    parse_duration,
    shown,
)

__all__ = [
    "ANY_DURATION",
    "DURATION",
    "Duration",
    "EXPORT_TO",
    "HOST",
    "INT32",
    "IP_OR_CIDR",
    "JWT_CLAIM_PREFIXES",
    "LABELS",
    "Nanos",
    "NetworkWorkloadSelector",
    "PORT",
    "POSITIVE_INT32",
    "Percent",
    "PolicyTargetReference",
    "PortSelector",
    "SELECTOR_LABELS",
    "STRICT_DURATION",
    "STRINGS",
    "StrictDuration",
    "TLS_VERSION",
    "UINT32",
    "UINT32_SECONDS",
    "UNIX_PREFIX",
    "WorkloadSelector",
    "domain_problem",
    "header_name_problem",
    "ip_or_cidr_problem",
    "is_istio_label",
    "unix_address_problem",
]


class Duration(Str):
    """A duration string (`10s`, `1m30s`, `0.5s`) between an optional lower bound and an upper
    one: `MAX_DURATION_TEXT` (what Kubernetes and Envoy can hold), or less where the Envoy field
    it becomes is smaller (whole seconds in a uint32)."""

    describe = "a duration such as '1s' or '100ms'"

    def __init__(self, minimum: str | None = "1ms", maximum: str = MAX_DURATION_TEXT) -> None:
        super().__init__()
        self.minimum = minimum
        self.minimum_nanos = parse_duration(minimum) if minimum else None
        self.maximum = maximum
        self.maximum_nanos = parse_duration(maximum)

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not isinstance(value, str):
            report(path, f"expected {self.describe}, got {type(value).__name__}")
            return
        nanos = duration_nanos(value)
        if nanos is None:
            report(path, f"invalid duration {shown(value)} (use e.g. '10s', '500ms', '1m30s')")
        elif nanos < 0:
            report(path, f"duration must not be negative, got {shown(value)}")
        elif self.minimum_nanos is not None and nanos < self.minimum_nanos:
            report(path, f"duration must be at least {self.minimum}, got {shown(value)}")
        elif self.maximum_nanos is not None and nanos > self.maximum_nanos:
            report(path, f"duration {shown(value)} is out of range: the longest is {self.maximum}")


def _fqdn_rule(value: str, path: FieldPath, report: Report) -> None:
    problem = fqdn_problem(value)
    if problem:
        report(path, problem)


def _labels_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    for key, item in value.items():
        problem = label_key_problem(key)
        if problem:
            report((*path, key), problem)
        elif isinstance(item, str):
            problem = label_value_problem(item)
            if problem:
                report((*path, key), problem)


HOST = Str(min_len=1, rules=[_fqdn_rule])
PORT = Int(1, 65535)
UINT32 = Int(0, UINT32_MAX)
INT32 = Int(INT32_MIN, INT32_MAX)
POSITIVE_INT32 = Int(0, INT32_MAX)
LABELS = Map(Str(), rules=[_labels_rule])
STRINGS = List(Str())
DURATION = Duration()
ANY_DURATION = Duration(minimum=None)

Nanos = Annotated[int, Parse(parse_duration)]
"""A duration field's view: nanoseconds, parsed once when the view is built."""


@message
class WorkloadSelector(Message):
    """security.istio.io's and DestinationRule's selector: `matchLabels`."""

    match_labels: Mapping[str, str] = field(LABELS)


@message(required=["kind", "name"])
class PolicyTargetReference(Message):
    """What a security policy applies to instead of selected workloads (a Service, a Gateway)."""

    group: str = ""
    kind: str = field(Str(min_len=1))
    name: str = field(Str(min_len=1))
    namespace: str = ""


@message
class PortSelector(Message):
    """A destination's port; `number` is 0 when not given (it is never 0 when given)."""

    number: int = field(PORT)


def _export_to_rule(value: list[Any], path: FieldPath, report: Report) -> None:
    if "~" in value and len(value) > 1:
        report(path, "'~' (export to nobody) cannot be combined with other values")
    if "*" in value and len(value) > 1:
        report(path, "'*' (export to all) cannot be combined with other values")


EXPORT_TO = List(
    Str(pattern=r"\*|\.|~|[a-z0-9]([-a-z0-9]*[a-z0-9])?", hint="use '.', '*', '~' or a namespace name"),
    unique=True,
    rules=[_export_to_rule],
)

TLS_VERSION = Enum("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")


class StrictDuration(Duration):
    """A duration Istio's webhook accepts: at least 1ms and a whole number of milliseconds.

    Envoy keeps timeouts at millisecond precision, so Istio refuses finer values rather than
    silently rounding them.
    """

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        super()._check(value, path, report)
        nanos = parse_duration(value) if isinstance(value, str) else None
        if nanos is None or nanos < (self.minimum_nanos or 0) or nanos > (self.maximum_nanos or nanos):
            return
        if nanos % 1_000_000:
            report(path, f"duration {shown(value)} is finer than a millisecond; use whole milliseconds")


STRICT_DURATION = StrictDuration()
UINT32_SECONDS = StrictDuration(maximum="4294967295s")
"""A duration Envoy keeps as whole seconds in a uint32 (TCP keepalive time and interval)."""

_ISTIO_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")
_HEADER_NAME = re.compile(r"^[-_A-Za-z0-9]+$")
JWT_CLAIM_PREFIXES = ("@request.auth.claims.", "@request.auth.claims[")
UNIX_PREFIX = "unix://"


def is_istio_label(text: str) -> bool:
    """Istio's IsDNS1123Label: like Kubernetes' but case-insensitive (port, subset, gateway names)."""
    return len(text) <= 63 and bool(_ISTIO_LABEL.match(text))


def header_name_problem(name: str) -> str | None:
    """Why `name` is not a header name Istio accepts in matches and JWT outputs, or None."""
    if not name:
        return "header name must not be empty"
    if not _HEADER_NAME.match(name):
        return f"invalid header name {shown(name)}: use letters, digits, '-' and '_'"
    return None


def domain_problem(host: str) -> str | None:
    """Istio's ValidateWildcardDomain: `fqdn_problem` plus an all-digit top-level domain ban.

    The ban is what keeps an IP address from passing as a host name.
    """
    problem = fqdn_problem(host)
    if problem:
        return problem
    labels = host.rstrip(".").split(".")
    if host != "*" and labels[-1].isdigit():
        return f"invalid host {shown(host)}: the top-level domain must not be all digits"
    return None


def unix_address_problem(address: str) -> str | None:
    """Why a `unix://` address (prefix already removed) is not a socket path, or None."""
    if not address:
        return "unix socket path must not be empty"
    if address.startswith("@"):
        return None
    if not address.startswith("/") or address.endswith("/"):
        return f"unix socket {shown(address)} must be an absolute path to a file"
    return None


def ip_or_cidr_problem(text: str) -> str | None:
    """Istio's ValidateIPSubnet: an IP address or a CIDR block."""
    if text.count("/") == 1:
        return None if is_cidr(text) else f"invalid CIDR block {shown(text)}"
    return None if is_ip(text) else f"invalid IP address {shown(text)}"


def _ip_or_cidr_rule(value: str, path: FieldPath, report: Report) -> None:
    problem = ip_or_cidr_problem(value)
    if problem:
        report(path, problem)


IP_OR_CIDR = Str(rules=[_ip_or_cidr_rule])


def _selector_labels_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    for key, item in value.items():
        if not key:
            report(path, "selector label keys must not be empty")
        elif "*" in key or "*" in item:
            report((*path, key), f"wildcards are not supported in selectors ({key}={item})")


SELECTOR_LABELS = Map(Str(), rules=[_selector_labels_rule])


@message
class NetworkWorkloadSelector(Message):
    """networking.istio.io's WorkloadSelector (Sidecar, ServiceEntry): `labels`, not `matchLabels`."""

    labels: Mapping[str, str] = field(SELECTOR_LABELS)


@message
class Percent(Message):
    """istio.networking.Percent: a double between 0 and 100 (each use site bounds it)."""

    value: float = 0.0
