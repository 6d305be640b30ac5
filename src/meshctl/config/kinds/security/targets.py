"""How a security policy picks what it applies to: a workload `selector`, or `targetRef(s)`."""

from __future__ import annotations

from typing import Any

from meshctl.config.kinds.common import PolicyTargetReference
from meshctl.config.paths import FieldPath
from meshctl.config.schema import List, Report

__all__ = ["SELECTION_GROUP", "TARGET_REFERENCE", "TARGET_REFERENCES"]

_TARGET_KINDS = frozenset(
    {
        ("", "Service"),
        ("core", "Service"),
        ("networking.istio.io", "ServiceEntry"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("gateway.networking.k8s.io", "GatewayClass"),
    }
)


def _target_ref_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("namespace"):
        report((*path, "namespace"), "namespace must not be set: cross-namespace references are not supported")
    group = value.get("group") or ""
    if (group, value["kind"]) not in _TARGET_KINDS:
        report((*path, "kind"),
               f"a policy can target a Service, ServiceEntry or gateway.networking.k8s.io Gateway, "
               f"not {group + '/' if group else ''}{value['kind']}")


TARGET_REFERENCE = PolicyTargetReference.SCHEMA.extend(rules=[_target_ref_rule])


def _target_refs_rule(value: list[Any], path: FieldPath, report: Report) -> None:
    if len(value) > 16:
        report(path, "at most 16 targetRefs may be set")


TARGET_REFERENCES = List(TARGET_REFERENCE, rules=[_target_refs_rule])
SELECTION_GROUP = ("selector", "targetRef", "targetRefs")
