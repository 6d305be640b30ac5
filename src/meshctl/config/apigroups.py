"""Istio's API groups and the Gateway API's, and every kind they define, read by meshctl or not.

Objects of kinds meshctl does not read are skipped, as `istioctl analyze` skips what it has no
analyzer for. In these groups that rule would hide typos: `kind: VirtualSevice` would be
skipped, and serve would withdraw the VirtualService it meant to change. So a kind in one of
them must be one the group defines; one meshctl does not read (EnvoyFilter, Telemetry,
BackendTLSPolicy) is still skipped, anything else is an error with the nearest real kind as a
suggestion.
"""

from __future__ import annotations

import difflib

from meshctl.config.values import shown

__all__ = ["ISTIO_KINDS", "unknown_kind_problem"]

ISTIO_KINDS: dict[str, frozenset[str]] = {
    "networking.istio.io": frozenset({
        "VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry",
        "WorkloadGroup", "EnvoyFilter", "ProxyConfig",
    }),
    "security.istio.io": frozenset({"PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"}),
    "telemetry.istio.io": frozenset({"Telemetry"}),
    "extensions.istio.io": frozenset({"WasmPlugin"}),
    "install.istio.io": frozenset({"IstioOperator"}),
    "gateway.networking.k8s.io": frozenset({
        "GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute", "UDPRoute", "ReferenceGrant",
        "BackendTLSPolicy", "BackendLBPolicy", "ListenerSet",
    }),
}
# A kind's home group (Istio's first: `Gateway` alone means Istio's).
_GROUP_OF: dict[str, str] = {}
for _group, _kinds in ISTIO_KINDS.items():
    for _kind in _kinds:
        _GROUP_OF.setdefault(_kind, _group)
_SUFFIX = ".istio.io"
# Kinds whose current version is not v1, for the apiVersion a misplaced kind is told to use.
_VERSIONS = {"TCPRoute": "v1alpha2", "TLSRoute": "v1alpha2", "UDPRoute": "v1alpha2", "ReferenceGrant": "v1beta1",
             "BackendLBPolicy": "v1alpha2", "ListenerSet": "v1alpha1", "WasmPlugin": "v1alpha1",
             "IstioOperator": "v1alpha1"}


def unknown_kind_problem(group: str, kind: str) -> str | None:
    """Why `kind` cannot be an object of `group`, or None when skipping it is right.

    In the groups above a kind must be one of theirs. Other `*.istio.io` groups (the retired
    config.istio.io, operators' own groups) are not known kind by kind: there only a kind that
    is nearly an Istio kind is an error.
    """
    if not (group.endswith(_SUFFIX) or group in ISTIO_KINDS) or kind in ISTIO_KINDS.get(group, ()):
        return None
    home = _GROUP_OF.get(kind)
    if home is not None:
        return f"{kind} is a kind of {home}, not of {group}; use apiVersion {home}/{_VERSIONS.get(kind, 'v1')}"
    nearest = _nearest(kind, ISTIO_KINDS.get(group) or _GROUP_OF)
    if nearest is None and group not in ISTIO_KINDS:
        return None
    if nearest is None:
        hint = f"; its kinds are {', '.join(sorted(ISTIO_KINDS[group]))}"
    elif _GROUP_OF[nearest] == group:
        hint = f"; did you mean {nearest}?"
    else:
        hint = f"; did you mean {nearest} ({_GROUP_OF[nearest]})?"
    return f"unknown kind {shown(kind)} in {group}{hint}"


def _nearest(kind: str, known: frozenset[str] | dict[str, str]) -> str | None:
    by_lower = {name.lower(): name for name in known}
    close = difflib.get_close_matches(kind.lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[close[0]] if close else None
