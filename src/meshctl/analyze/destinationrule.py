"""Checks of DestinationRules against the registry, the workloads and each other."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.messages import (
    MERGED_DESTINATION_RULES,
    NO_CA_DESTINATION_LEVEL,
    NO_CA_PORT_LEVEL,
    SUBSET_SELECTS_NO_PODS,
    UNKNOWN_DESTINATION_RULE_HOST,
    Level,
)
from meshctl.config.kinds.kubernetes import PodSpec
from meshctl.config.kinds.networking import DestinationRule
from meshctl.config.kinds.networking.destination_rule import ClientTLSSettings
from meshctl.config.resource import Resource
from meshctl.hostnames import fqdn
from meshctl.model.selectors import selects
from meshctl.model.service import Service, Workload

__all__ = ["HOSTNAME_LABEL", "TOPOLOGY_LABELS", "ca_certificates", "merged_rules", "subsets_select_pods"]


TOPOLOGY_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone")
HOSTNAME_LABEL = "kubernetes.io/hostname"


def subsets_select_pods(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0174 for a host no service of the registry answers to, IST0173 for a subset no
    workload behind the host carries the labels of (its requests get 503 UH). Hosts are judged
    only when the input describes the registry at all, subsets only when it has workloads: a
    directory of Istio config alone is not a mesh without services or pods (as `istioctl analyze`
    skips these checks without a cluster)."""
    if not ctx.has_registry:
        return
    for rule in ctx.of("DestinationRule"):
        spec = rule.view_as(DestinationRule)
        service = ctx.lookup(spec.host, rule.namespace, spec.export_to)
        if service is None:
            yield finding(UNKNOWN_DESTINATION_RULE_HOST, rule, ("spec", "host"), spec.host)
        elif spec.subsets and ctx.has_workloads:
            yield from _empty_subsets(ctx, rule, spec, service)


def _node_labels(ctx: AnalysisContext) -> dict[str, Mapping[str, str]]:
    return {node.name: node.labels for node in ctx.of("Node")}


def _with_topology(workload: Workload, nodes: Mapping[str, Mapping[str, str]]) -> Mapping[str, str]:
    """A pod's labels as Istio's registry sees its endpoint: with its node's topology labels
    (non-empty ones) and the node name added."""
    if workload.source.kind != "Pod":
        return workload.labels
    node = workload.source.view_as(PodSpec).node_name
    if not node:
        return workload.labels
    labels = dict(workload.labels)
    found = nodes.get(node)
    if found is not None:
        labels.update((key, found[key]) for key in TOPOLOGY_LABELS if found.get(key))
    labels[HOSTNAME_LABEL] = node
    return labels


def _candidate_labels(ctx: AnalysisContext, service: Service) -> list[Mapping[str, str]] | None:
    """The label sets of the workloads behind a service, or None when the input cannot tell
    (a service that selects no workloads and lists none of its own)."""
    if service.inline_workloads:
        return [workload.labels for workload in service.inline_workloads]
    if not service.selector:
        return None
    nodes = _node_labels(ctx)
    return [_with_topology(workload, nodes) for workload in ctx.registry.selected(service.namespace, service.selector)]


def _empty_subsets(ctx: AnalysisContext, rule: Resource, spec: DestinationRule, service: Service) -> Iterator[Finding]:
    candidates = _candidate_labels(ctx, service)
    if candidates is None:
        return
    for position, subset in enumerate(spec.subsets):
        if not any(selects(subset.labels, labels) for labels in candidates):
            yield finding(SUBSET_SELECTS_NO_PODS, rule, ("spec", "subsets", position, "name"), subset.name)


def merged_rules(ctx: AnalysisContext) -> Iterator[Finding]:
    """DestinationRules of one namespace for one host are merged: say what the merge drops."""
    groups: dict[tuple[str, str], list[Resource]] = defaultdict(list)
    for rule in ctx.of("DestinationRule"):
        spec = rule.view_as(DestinationRule)
        if spec.workload_selector is None:
            groups[(rule.namespace, fqdn(spec.host, rule.namespace))].append(rule)
    for (_, host), rules in groups.items():
        if len(rules) < 2:
            continue
        rules.sort(key=lambda rule: (rule.created, rule.name))
        names = ", ".join(f"{rule.namespace}/{rule.name}" for rule in rules)
        lost = _merge_losses(rules)
        detail = "; ".join(lost) if lost else "the merge keeps every setting"
        level: Level = "Warning" if lost else "Info"
        for rule in rules:
            yield finding(MERGED_DESTINATION_RULES, rule, ("spec", "host"), names, host, detail, level=level)


def _merge_losses(rules: list[Resource]) -> list[str]:
    """What Istio's merge of same-host rules throws away: later trafficPolicies, repeated subsets."""
    lost = []
    with_policy = [rule for rule in rules if rule.view_as(DestinationRule).traffic_policy is not None]
    if len(with_policy) > 1:
        ignored = ", ".join(f"{rule.namespace}/{rule.name}" for rule in with_policy[1:])
        lost.append(f"only the trafficPolicy of {with_policy[0].namespace}/{with_policy[0].name} applies, "
                    f"the one of {ignored} is ignored")
    seen: set[str] = set()
    for rule in rules:
        for subset in rule.view_as(DestinationRule).subsets:
            if subset.name in seen:
                lost.append(f"subset {subset.name!r} of {rule.namespace}/{rule.name} is dropped as a duplicate")
            seen.add(subset.name)
    return lost


def _unverified(tls: ClientTLSSettings | None, selected: bool) -> bool:
    """SIMPLE or MUTUAL origination without a CA bundle: the server's certificate goes unchecked.
    A `credentialName` brings its own CA, but only for the workloads a `workloadSelector` picks
    (credentials are read by gateways, not sidecars)."""
    if tls is None or tls.mode not in ("SIMPLE", "MUTUAL") or tls.ca_certificates:
        return False
    return not (tls.credential_name and selected)


def ca_certificates(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0128 (rule-wide) and IST0129 (per port): TLS origination that trusts any server."""
    for rule in ctx.of("DestinationRule"):
        spec = rule.view_as(DestinationRule)
        policy = spec.traffic_policy
        if policy is None:
            continue
        name = f"{rule.namespace}/{rule.name}"
        selected = spec.workload_selector is not None
        if _unverified(policy.tls, selected):
            assert policy.tls is not None
            yield finding(NO_CA_DESTINATION_LEVEL, rule, ("spec", "trafficPolicy", "tls", "caCertificates"), name,
                          rule.namespace, policy.tls.mode, spec.host)
        for index, port in enumerate(policy.port_level_settings):
            if _unverified(port.tls, selected):
                assert port.tls is not None
                yield finding(NO_CA_PORT_LEVEL, rule,
                              ("spec", "trafficPolicy", "portLevelSettings", index, "tls", "caCertificates"), name,
                              rule.namespace, port.tls.mode, spec.host, f"number:{port.port.number}")
