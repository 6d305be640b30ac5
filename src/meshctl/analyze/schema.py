"""IST0106 in Istio's words where Istio's validation refuses the same thing.

meshctl's validators speak to people fixing a file (`spec.servers[1].port.name: duplicate port
name 'http': ...`); `istioctl analyze` prints its webhook's error instead (`port names in servers
must be unique: duplicate name http`), and users grep, suppress and search for those words. For
the problems both refuse, the message of an IST0106 is Istio's; the line stays meshctl's (the
offending field's). Other problems keep meshctl's wording, prefixed by the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshctl.config.loader import Problem

__all__ = ["istio_wording"]


@dataclass(frozen=True, slots=True)
class _Wording:
    kind: str
    field: re.Pattern[str]
    message: re.Pattern[str]
    istio: Callable[[re.Match[str]], str]


def _rule(kind: str, field: str, message: str, istio: Callable[[re.Match[str]], str]) -> _Wording:
    return _Wording(kind, re.compile(field), re.compile(message), istio)


_WORDINGS: Sequence[_Wording] = (
    _rule("Gateway", r"spec\.servers", r"required field is missing", lambda _: "gateway must have at least one server"),
    _rule("Gateway", r"spec\.servers\[\d+\]\.port", r"required field is missing", lambda _: "port is required"),
    _rule("Gateway", r"spec\.servers\[\d+\]\.port\.name", r"duplicate port name '(?P<name>[^']*)'",
          lambda m: f"port names in servers must be unique: duplicate name {m['name']}"),
    _rule("VirtualService", r"spec", r"a VirtualService needs at least one of http, tcp or tls",
          lambda _: "http, tcp or tls must be provided in virtual service"),
    _rule("VirtualService", r"spec\.hosts\[\d+\]", r"'\*' is not allowed as a host of a VirtualService bound",
          lambda _: "wildcard host * is not allowed for virtual services bound to the mesh gateway"),
    _rule("Sidecar", r"spec", r"a Sidecar must set at least one of", lambda _: "sidecar: empty configuration provided"),
    _rule("ServiceEntry", r"spec\.hosts\[\d+\]", r"resolution is (?P<mode>[A-Z_]+) and there are no endpoints",
          lambda m: f"hosts must be FQDN if no endpoints are provided for resolution mode {m['mode']}"),
)


def istio_wording(kind: str, problem: Problem) -> str:
    """The text of the IST0106 message for one problem of an object of `kind`."""
    for wording in _WORDINGS:
        if wording.kind != kind or not wording.field.fullmatch(problem.field):
            continue
        found = wording.message.search(problem.message)
        if found:
            return wording.istio(found)
    return f"{problem.field}: {problem.message}" if problem.field else problem.message
