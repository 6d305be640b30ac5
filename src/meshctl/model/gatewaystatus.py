"""The status Istio writes on the Gateway API objects it controls, computed from the conversion
(model/gatewayapi.py): what the conversion accepted sets a condition True, what it refused
False with Istio's reason and message. One implementation, so the status says exactly what
the translation did.

Written for: GatewayClasses of Istio's controllers (`Accepted`), Gateways of the remote class
(`istio-remote`: accepted, never programmed by Istio, addresses as written), Gateways of Istio's class
(`Accepted`, False for addresses Istio cannot use; `Programmed` with the Service ports it is
assigned to; `ResolvedRefs` when it names a certificate for backends; `status.addresses`, and per listener `Accepted`, `Conflicted`, `Programmed`,
`ResolvedRefs`, the supported kinds and the number of routes attached; a listener that
conflicts with an earlier one is neither accepted nor programmed), and every route with a parentRef to one of those Gateways or to a
Service (`status.parents[]`: `Accepted`, `ResolvedRefs`, with the parentRef as written and
`controllerName: istio.io/gateway-controller`; other controllers' entries are kept).

Pure: the clock is an argument. A condition that keeps its status keeps its
`lastTransitionTime`, so a status recomputed from unchanged input equals the stored one and
`changed_statuses` returns nothing for it: replicas computing the same status never write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshctl.config.kinds import gatewayapi as api
from meshctl.config.resource import Resource
from meshctl.config.values import is_ip
from meshctl.model.gatewayapi import (
    KUBERNETES_GATEWAY,
    ROUTE_KINDS,
    Converted,
    GatewayReport,
    ListenerReport,
    ParentReport,
    Problem,
    convert,
)
from meshctl.model.gatewayclasses import (
    CONTROLLERS,
    ISTIO_CONTROLLER,
    REMOTE_CONTROLLER,
    class_controller,
    controllers_by_name,
)

__all__ = ["ObjectStatus", "changed_statuses", "gateway_api_statuses"]

_NO_ERRORS = "No errors found"
Condition = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """The whole `status` one object should have."""

    resource: Resource
    status: Mapping[str, Any]


def gateway_api_statuses(resources: Sequence[Resource], domain: str, now: str,
                         converted: Converted | None = None) -> list[ObjectStatus]:
    """The status of every Gateway API object Istio's controller owns among `resources`
    (conditions new or changed since the stored status dated `now`); `converted` is their
    conversion when the caller has it."""
    if converted is None:
        converted = convert(resources, domain)
    out: list[ObjectStatus] = []
    controllers = controllers_by_name(resources)
    for resource in resources:
        if resource.kind == "GatewayClass":
            if controllers[resource.name] in CONTROLLERS:
                wanted = [_condition("Accepted", None, "Accepted", "Handled by Istio controller", resource.generation)]
                out.append(ObjectStatus(resource, dict(resource.status, conditions=_merged(
                    resource.status.get("conditions"), wanted, now))))
        elif resource.kind == KUBERNETES_GATEWAY:
            report = converted.gateways.get(resource.key)
            if report is not None:
                out.append(ObjectStatus(resource, _gateway_status(report, now)))
            elif class_controller(resource.view_as(api.Gateway).gateway_class_name, controllers) == REMOTE_CONTROLLER:
                out.append(ObjectStatus(resource, _remote_gateway_status(resource, now)))
        elif resource.kind in ROUTE_KINDS:
            parents = converted.routes.get(resource.key)
            if parents:
                out.append(ObjectStatus(resource, _route_status(resource, parents, now)))
    return out


def changed_statuses(statuses: Iterable[ObjectStatus]) -> list[ObjectStatus]:
    """Those that differ from what their object holds: the writes worth making."""
    return [s for s in statuses if dict(s.status) != dict(s.resource.status)]


def _gateway_status(report: GatewayReport, now: str) -> dict[str, Any]:
    gateway = report.gateway
    generation = gateway.generation
    stored = gateway.status
    assigned = _joined(report.assigned)
    programmed = None
    message = f"Resource programmed, assigned to service(s) {assigned}" if assigned else "Resource programmed"
    if not report.services:
        programmed = Problem("UnsupportedAddress", "Failed to assign to any requested addresses")
    elif report.unassigned:
        warnings = "; ".join(report.unassigned)
        text = (f"Assigned to service(s) {assigned}, but failed to assign to all requested addresses: {warnings}"
                if assigned else f"Failed to assign to any requested addresses: {warnings}")
        programmed = Problem("AddressNotUsable", text)
    conditions = [_condition("Accepted", report.accepted, "Accepted", "Resource accepted", generation),
                  _condition("Programmed", programmed, "Programmed", message, generation)]
    if report.client_certificate:
        conditions.append(_condition("ResolvedRefs", report.resolved_refs, "ResolvedRefs", "All references resolved",
                                     generation))
    stored_listeners = {entry.get("name"): entry for entry in stored.get("listeners") or () if isinstance(entry, dict)}
    listeners = []
    for listener in report.listeners:
        previous = stored_listeners.get(listener.name) or {}
        listeners.append({
            "attachedRoutes": listener.attached_routes,
            "conditions": _merged(previous.get("conditions"), _listener_conditions(listener, generation), now),
            "name": listener.name,
            "supportedKinds": [{"group": api.GROUP, "kind": kind} for kind in listener.kinds],
        })
    if not report.services:  # nothing translated: the listeners keep what they had, with no route
        names = {listener.name for listener in gateway.view_as(api.Gateway).listeners}
        listeners = [dict(entry, attachedRoutes=0) for name, entry in stored_listeners.items() if name in names]
    status = _unowned(stored)
    if report.addresses:
        status["addresses"] = [{"type": "IPAddress" if is_ip(a) else "Hostname", "value": a}
                               for a in report.addresses]
    status["conditions"] = _merged(stored.get("conditions"), conditions, now)
    if listeners:
        status["listeners"] = listeners
    return status


def _remote_gateway_status(gateway: Resource, now: str) -> dict[str, Any]:
    """A Gateway of another cluster (class `istio-remote`): accepted, and programmed as far as
    Istio goes (not at all), its addresses as written, no listeners."""
    spec = gateway.view_as(api.Gateway)
    wanted = [_condition("Accepted", None, "Accepted", "Resource accepted", gateway.generation),
              _condition("Programmed", None, "Programmed", "This Gateway is remote; Istio will not program it",
                         gateway.generation)]
    status = _unowned(gateway.status)
    if spec.addresses:
        status["addresses"] = [{"type": a.type, "value": a.value} for a in spec.addresses]
    status["conditions"] = _merged(gateway.status.get("conditions"), wanted, now)
    return status


def _unowned(stored: Mapping[str, Any]) -> dict[str, Any]:
    """What of a Gateway's stored status the controller does not write (another's fields)."""
    return {key: value for key, value in stored.items() if key not in ("addresses", "conditions", "listeners")}


def _listener_conditions(listener: ListenerReport, generation: int) -> list[Condition]:
    """A listener's conditions: a conflicted one is neither accepted nor programmed, for the
    conflict's reason, and its references are not looked at (a ResolvedRefs it had stays, as in
    Istio's, unless its route kinds are invalid)."""
    conflict = listener.conflicted
    if conflict is not None:
        wanted = [_condition("Accepted", conflict, "Accepted", _NO_ERRORS, generation),
                  _condition("Conflicted", None, conflict.reason, conflict.message, generation),
                  _condition("Programmed", conflict, "Programmed", _NO_ERRORS, generation)]
        if listener.resolved_refs is not None:
            wanted.append(_condition("ResolvedRefs", listener.resolved_refs, "ResolvedRefs", _NO_ERRORS, generation))
        return wanted
    return [
        _condition("Accepted", listener.accepted, "Accepted", _NO_ERRORS, generation),
        _condition("Conflicted", None, "NoConflicts", _NO_ERRORS, generation, status="False"),
        _condition("Programmed", listener.programmed, "Programmed", _NO_ERRORS, generation),
        _condition("ResolvedRefs", listener.resolved_refs, "ResolvedRefs", _NO_ERRORS, generation),
    ]


def _route_status(route: Resource, reports: Sequence[ParentReport], now: str) -> dict[str, Any]:
    written = route.spec.get("parentRefs") or []
    stored = [p for p in route.status.get("parents") or () if isinstance(p, dict)]
    kept = [p for p in stored if p.get("controllerName") != ISTIO_CONTROLLER]
    ours = {_ref_key(p.get("parentRef") or {}): p for p in stored if p.get("controllerName") == ISTIO_CONTROLLER}
    parents: dict[str, dict[str, Any]] = {}
    for report in reports:
        ref = dict(written[report.index])
        key = _ref_key(ref)
        if key in parents:  # the same parent written twice: one entry, as Istio reports it
            continue
        valid = "Route was valid" if report.bound <= 1 else f"Route was valid, bound to {report.bound} parents"
        wanted = [_condition("Accepted", report.denied, "Accepted", valid, route.generation),
                  _condition("ResolvedRefs", report.route_error, "ResolvedRefs", "All references resolved",
                             route.generation)]
        previous = ours.get(key) or {}
        parents[key] = {"conditions": _merged(previous.get("conditions"), wanted, now),
                        "controllerName": ISTIO_CONTROLLER, "parentRef": ref}
    every = kept + list(parents.values())
    every.sort(key=lambda p: _ref_key(p.get("parentRef") or {}), reverse=True)
    return dict(route.status, parents=every)


def _condition(kind: str, problem: Problem | None, reason: str, message: str, generation: int,
               status: str = "True") -> Condition:
    """A condition in its success state (`status`), or its inverse with the problem's reason
    and message."""
    if problem is not None:
        status, reason, message = ("False" if status == "True" else "True"), problem.reason, problem.message
    condition: Condition = {"message": message}
    if generation:
        condition["observedGeneration"] = generation
    return condition | {"reason": reason, "status": status, "type": kind}


def _merged(stored: Any, wanted: Sequence[Condition], now: str) -> list[Condition]:
    """`wanted` over the stored conditions: a condition keeps its place and, while its status
    holds, its lastTransitionTime; conditions of other types stay as they are; new types are
    added in the order given."""
    existing = [c for c in stored or () if isinstance(c, dict)]
    by_type = {c["type"]: c for c in wanted}
    out: list[Condition] = []
    for condition in existing:
        new = by_type.pop(condition.get("type"), None)
        if new is None:
            out.append(condition)
            continue
        since = condition.get("lastTransitionTime") if condition.get("status") == new["status"] else None
        out.append({"lastTransitionTime": since or now, **new})
    out += [{"lastTransitionTime": now, **c} for c in wanted if c["type"] in by_type]
    return out


def _ref_key(ref: Mapping[str, Any]) -> str:
    """Istio's ordering key of a parentRef: group/kind/name/section/port.namespace."""
    return (f"{ref.get('group') or ''}/{ref.get('kind') or ''}/{ref.get('name') or ''}/{ref.get('sectionName') or ''}"
            f"/{ref.get('port') or 0}.{ref.get('namespace') or ''}")


def _joined(items: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b, and c`: how Istio lists services in a message."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]

