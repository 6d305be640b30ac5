"""Which AuthorizationPolicies and RequestAuthentications apply to a sidecar, in Istio's order
(security research §4.1, §5.1).

Candidates are the policies of the mesh's root namespace and of the proxy's own namespace,
root first, each in Istio's precedence (oldest, then name, then namespace). A policy picks the
workload with its `selector` (none: every workload of its namespace); a policy with
`targetRef(s)` is for gateways and waypoints, never for a sidecar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meshctl.config.kinds.security.authorization_policy import AuthorizationPolicy
from meshctl.config.kinds.security.request_authentication import JWTRule, RequestAuthentication
from meshctl.config.resource import Resource
from meshctl.model.istio import order_key
from meshctl.model.selectors import selects

__all__ = ["AuthzPolicy", "DRY_RUN_ANNOTATION", "authorization_policies", "dry_run", "jwt_rules"]

DRY_RUN_ANNOTATION = "istio.io/dry-run"
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def dry_run(annotations: Mapping[str, str]) -> bool | None:
    """`istio.io/dry-run` read as Go's strconv.ParseBool reads it; None when it is not a boolean
    (Istio then logs an error and enforces the policy)."""
    value = annotations.get(DRY_RUN_ANNOTATION)
    if value is None or value in _FALSE:
        return False
    return True if value in _TRUE else None


@dataclass(frozen=True, slots=True)
class AuthzPolicy:
    """An AuthorizationPolicy as the RBAC builder reads it: where it comes from and whether it
    only records its verdict (dry run, as Envoy shadow rules)."""

    namespace: str
    name: str
    spec: AuthorizationPolicy
    dry_run: bool = False

    @classmethod
    def of(cls, resource: Resource) -> AuthzPolicy:
        return cls(resource.namespace, resource.name, resource.view_as(AuthorizationPolicy),
                   bool(dry_run(resource.annotations)))


def _applies(selector_labels: Mapping[str, str] | None, targeted: bool, labels: Mapping[str, str]) -> bool:
    return not targeted and selects(selector_labels or {}, labels)


def _candidates(resources: Iterable[Resource], namespace: str, root: str) -> list[Resource]:
    ordered = sorted(resources, key=order_key)
    in_root = [r for r in ordered if r.namespace == root]
    own = [r for r in ordered if r.namespace == namespace] if namespace != root else []
    return in_root + own


def authorization_policies(resources: Sequence[Resource], namespace: str, labels: Mapping[str, str],
                           root: str) -> tuple[AuthzPolicy, ...]:
    """The AuthorizationPolicies that apply to a sidecar in `namespace` with `labels`."""
    out = []
    for resource in _candidates(resources, namespace, root):
        spec = resource.view_as(AuthorizationPolicy)
        selector = spec.selector.match_labels if spec.selector is not None else None
        if _applies(selector, bool(spec.target_ref or spec.target_refs), labels):
            out.append(AuthzPolicy.of(resource))
    return tuple(out)


def jwt_rules(resources: Sequence[Resource], namespace: str, labels: Mapping[str, str],
              root: str) -> tuple[JWTRule, ...]:
    """The JWT rules of every RequestAuthentication that applies, in policy order."""
    out: list[JWTRule] = []
    for resource in _candidates(resources, namespace, root):
        spec = resource.view_as(RequestAuthentication)
        selector = spec.selector.match_labels if spec.selector is not None else None
        if _applies(selector, bool(spec.target_ref or spec.target_refs), labels):
            out.extend(spec.jwt_rules)
    return tuple(out)
