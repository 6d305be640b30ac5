"""Checks of DestinationRules against the registry, the workloads and each other."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from meshctl.analyze.finding import (
    MERGED_DESTINATION_RULES,
    SUBSET_SELECTS_NO_PODS,
    UNKNOWN_DESTINATION_RULE_HOST,
    Finding,
    finding,
)
from meshctl.analyze.index import MeshIndex, Service, selects
from meshctl.config.resource import Resource
from meshctl.hostnames import fqdn


def check(index: MeshIndex) -> Iterator[Finding]:
    """Every DestinationRule finding of the analysis."""
    for rule in index.of("DestinationRule"):
        services = index.lookup(rule.spec["host"], rule.namespace) if index.has_registry else []
        if index.has_registry and not services:
            yield finding(UNKNOWN_DESTINATION_RULE_HOST, rule, ("spec", "host"),
                          f"The host {rule.spec['host']} defined in the DestinationRule does not match any services "
                          "in the mesh.")
        if index.has_workloads and services:
            yield from _empty_subsets(index, rule, services)
    yield from _merged_rules(index)


def _candidate_labels(index: MeshIndex, service: Service) -> list[dict[str, str]] | None:
    """The label sets of the endpoints a service can have, or None when the input cannot tell."""
    if service.endpoint_labels:
        return [dict(labels) for labels in service.endpoint_labels]
    if not service.selector:
        return None
    return [
        dict(workload.labels)
        for workload in index.workloads
        if workload.namespace == service.namespace and selects(service.selector, workload.labels)
    ]


def _empty_subsets(index: MeshIndex, rule: Resource, services: list[Service]) -> Iterator[Finding]:
    """IST0173: a subset whose labels no endpoint of the host carries gets no traffic (503 UH)."""
    candidates: list[dict[str, str]] = []
    for service in services:
        labels = _candidate_labels(index, service)
        if labels is None:
            return
        candidates.extend(labels)
    for position, subset in enumerate(rule.spec.get("subsets") or []):
        wanted = subset.get("labels") or {}
        if not any(selects(wanted, labels) for labels in candidates):
            yield finding(SUBSET_SELECTS_NO_PODS, rule, ("spec", "subsets", position, "name"),
                          f"The Subset {subset['name']} defined in the DestinationRule does not select any pods. "
                          "Which may lead to 503 UH (NoHealthyUpstream).")


def _merged_rules(index: MeshIndex) -> Iterator[Finding]:
    """DestinationRules of one namespace for one host are merged: say what the merge drops."""
    groups: dict[tuple[str, str], list[Resource]] = defaultdict(list)
    for rule in index.of("DestinationRule"):
        if rule.spec.get("workloadSelector") is None:
            groups[(rule.namespace, fqdn(rule.spec["host"], rule.namespace))].append(rule)
    for (_, host), rules in groups.items():
        if len(rules) < 2:
            continue
        rules.sort(key=lambda rule: (rule.created, rule.name))
        names = ", ".join(f"{rule.namespace}/{rule.name}" for rule in rules)
        lost = _merge_losses(rules)
        detail = "; ".join(lost) if lost else "the merge keeps every setting"
        level = "Warning" if lost else "Info"
        for rule in rules:
            yield finding(MERGED_DESTINATION_RULES, rule, ("spec", "host"),
                          f"DestinationRules {names} define the same host {host}; Istio merges them: {detail}.",
                          level=level)


def _merge_losses(rules: list[Resource]) -> list[str]:
    """What Istio's merge of same-host rules throws away: later trafficPolicies, repeated subsets."""
    lost = []
    with_policy = [rule for rule in rules if rule.spec.get("trafficPolicy") is not None]
    if len(with_policy) > 1:
        ignored = ", ".join(f"{rule.namespace}/{rule.name}" for rule in with_policy[1:])
        lost.append(f"only the trafficPolicy of {with_policy[0].namespace}/{with_policy[0].name} applies, "
                    f"the one of {ignored} is ignored")
    seen: set[str] = set()
    for rule in rules:
        for subset in rule.spec.get("subsets") or []:
            if subset["name"] in seen:
                lost.append(f"subset {subset['name']!r} of {rule.namespace}/{rule.name} is dropped as a duplicate")
            seen.add(subset["name"])
    return lost
