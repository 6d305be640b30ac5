"""Istio's API groups and every kind they define, read by meshctl or not.

Objects of kinds meshctl does not read are skipped, as `istioctl analyze` skips what it has no
analyzer for. In Istio's own groups that rule would hide typos: `kind: VirtualSevice` would be
skipped, and serve would withdraw the VirtualService it meant to change. So a kind in an Istio
group must be one Istio defines; one meshctl does not read (EnvoyFilter, Telemetry) is still
skipped, anything else is an error with the nearest real kind as a suggestion.
"""

from __future__ import annotations

import difflib

from meshctl.config.values import shown

ISTIO_KINDS: dict[str, frozenset[str]] = {
    "networking.istio.io": frozenset({
        "VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry",
        "WorkloadGroup", "EnvoyFilter", "ProxyConfig",
    }),
    "security.istio.io": frozenset({"PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"}),
    "telemetry.istio.io": frozenset({"Telemetry"}),
    "extensions.istio.io": frozenset({"WasmPlugin"}),
    "install.istio.io": frozenset({"IstioOperator"}),
}
_GROUP_OF = {kind: group for group, kinds in ISTIO_KINDS.items() for kind in kinds}
_SUFFIX = ".istio.io"


def unknown_kind_problem(group: str, kind: str) -> str | None:
    """Why `kind` cannot be an object of `group`, or None when skipping it is right.

    In the groups above a kind must be one of theirs. Other `*.istio.io` groups (the retired
    config.istio.io, operators' own groups) are not known kind by kind: there only a kind that
    is nearly an Istio kind is an error.
    """
    if not group.endswith(_SUFFIX) or kind in ISTIO_KINDS.get(group, ()):
        return None
    home = _GROUP_OF.get(kind)
    if home is not None:
        return f"{kind} is a kind of {home}, not of {group}; use apiVersion {home}/v1"
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
