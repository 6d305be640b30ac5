"""AuthorizationPolicies against the workloads and namespaces they name (Istio's
auth.AuthorizationPoliciesAnalyzer)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

from meshctl.analyze.context import AnalysisContext, ambient_pod
from meshctl.analyze.finding import Finding, finding, selector_text
from meshctl.analyze.messages import NO_MATCHING_WORKLOADS, REFERENCED_RESOURCE_NOT_FOUND
from meshctl.config.kinds.security import AuthorizationPolicy
from meshctl.config.resource import Resource
from meshctl.model.selectors import selects

__all__ = ["check", "namespace_matches"]


def _mesh_pods(ctx: AnalysisContext) -> dict[str, list[Mapping[str, str]]]:
    """The labels of the pods in the mesh (with a sidecar, or enrolled in ambient), by namespace."""
    pods: dict[str, list[Mapping[str, str]]] = defaultdict(list)
    for workload in ctx.registry.workloads:
        if workload.kind == "Pod" and (workload.injected or ambient_pod(workload.annotations)):
            pods[workload.namespace].append(workload.labels)
    return pods


def namespace_matches(pattern: str, namespace: str) -> bool:
    """An AuthorizationPolicy namespace pattern: `*`, `prefix*`, `*suffix` or an exact name."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return namespace.endswith(pattern[1:])
    if pattern.endswith("*"):
        return namespace.startswith(pattern[:-1])
    return pattern.lower() == namespace.lower()


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0127 for a policy no pod in the mesh is subject to; IST0101 for a source namespace
    pattern that no Namespace of the input matches (only when the input has Namespaces)."""
    pods = _mesh_pods(ctx)
    namespaces = [namespace.name for namespace in ctx.of("Namespace")]
    for policy in ctx.of("AuthorizationPolicy"):
        spec = policy.view_as(AuthorizationPolicy)
        if ctx.has_workloads:
            yield from _no_workloads(ctx, policy, spec, pods)
        if namespaces:
            yield from _unknown_namespaces(policy, spec, namespaces)


def _no_workloads(ctx: AnalysisContext, policy: Resource, spec: AuthorizationPolicy,
                  pods: Mapping[str, list[Mapping[str, str]]]) -> Iterator[Finding]:
    selector = spec.selector.match_labels if spec.selector is not None else None
    if spec.target_ref is not None or spec.target_refs:
        return
    if policy.namespace == ctx.mesh.root_namespace:
        if selector is not None and not any(selects(selector, labels) for group in pods.values() for labels in group):
            yield finding(NO_MATCHING_WORKLOADS, policy, ("spec", "selector"), selector_text(selector))
        return
    if selector is None:
        if not pods.get(policy.namespace):
            yield finding(NO_MATCHING_WORKLOADS, policy, ("metadata", "name"), "")
        return
    if not any(selects(selector, labels) for labels in pods.get(policy.namespace, ())):
        yield finding(NO_MATCHING_WORKLOADS, policy, ("spec", "selector"), selector_text(selector))


def _unknown_namespaces(policy: Resource, spec: AuthorizationPolicy, namespaces: list[str]) -> Iterator[Finding]:
    for rule_index, rule in enumerate(spec.rules):
        for source_index, origin in enumerate(rule.from_):
            if origin.source is None:
                continue
            for field, patterns in (("namespaces", origin.source.namespaces),
                                    ("notNamespaces", origin.source.not_namespaces)):
                for position, pattern in enumerate(patterns):
                    if not any(namespace_matches(pattern, namespace) for namespace in namespaces):
                        path = ("spec", "rules", rule_index, "from", source_index, "source", field, position)
                        yield finding(REFERENCED_RESOURCE_NOT_FOUND, policy, path, "namespace", pattern)
