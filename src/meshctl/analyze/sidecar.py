"""Checks of Sidecars against each other: one default per namespace, one Sidecar per workload."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping

from meshctl.analyze.context import AnalysisContext, ambient_namespace, ambient_pod
from meshctl.analyze.finding import Finding, finding, selector_text
from meshctl.analyze.messages import (
    CONFLICTING_SIDECAR_SELECTORS,
    INEFFECTIVE_POLICY,
    MULTIPLE_SIDECARS_WITHOUT_SELECTOR,
    REFERENCED_RESOURCE_NOT_FOUND,
)
from meshctl.config.kinds.networking import Sidecar
from meshctl.config.resource import Resource
from meshctl.model.selectors import selects
from meshctl.model.service import POD, Workload

__all__ = ["check"]


def _selector(sidecar: Resource) -> Mapping[str, str]:
    selector = sidecar.view_as(Sidecar).workload_selector
    return selector.labels if selector is not None else {}


def _pods(workloads: Iterable[Workload]) -> Iterator[tuple[str, Workload]]:
    """Each pod with the name to report it by. A Deployment's replicas share their labels, so
    they are checked once, under the Deployment's name: the name the input knows."""
    seen: set[int] = set()
    for workload in workloads:
        if workload.kind != POD:
            continue
        if workload.source.kind != "Deployment":
            yield workload.name, workload
        elif id(workload.source) not in seen:
            seen.add(id(workload.source))
            yield workload.owner, workload


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0111 and IST0110: Istio picks one Sidecar per workload, and which one is undefined;
    IST0101 for a selector no pod of the namespace carries; IST0167 for Sidecars whose
    namespace or workloads run in ambient mode, where no sidecar reads them."""
    defaults: dict[str, list[Resource]] = defaultdict(list)
    for sidecar in ctx.of("Sidecar"):
        if not _selector(sidecar):
            defaults[sidecar.namespace].append(sidecar)
    for namespace, sidecars in defaults.items():
        if ambient_namespace(ctx.namespace(namespace)):
            for sidecar in sidecars:
                yield finding(INEFFECTIVE_POLICY, sidecar, ("metadata", "name"),
                              "namespace is in ambient mode, the policy has no impact")
            continue
        if len(sidecars) < 2:
            continue
        names = [sidecar.name for sidecar in sidecars]
        for sidecar in sidecars:
            yield finding(MULTIPLE_SIDECARS_WITHOUT_SELECTOR, sidecar, ("spec",), names, namespace)
    if not ctx.has_workloads:
        return
    chosen: dict[tuple[str, str], list[Resource]] = defaultdict(list)
    pods = list(_pods(ctx.registry.workloads))
    for sidecar in ctx.of("Sidecar"):
        selector = _selector(sidecar)
        if not selector:
            continue
        selected = [(name, workload) for name, workload in pods
                    if workload.namespace == sidecar.namespace and selects(selector, workload.labels)]
        if not selected:
            yield finding(REFERENCED_RESOURCE_NOT_FOUND, sidecar, ("spec", "workloadSelector"), "selector",
                          selector_text(selector))
        elif any(ambient_pod(workload.annotations) for _, workload in selected):
            yield finding(INEFFECTIVE_POLICY, sidecar, ("spec", "workloadSelector"),
                          "selected workload is in ambient mode, the policy has no impact")
        else:
            for name, workload in selected:
                chosen[(workload.namespace, name)].append(sidecar)
    for (namespace, name), sidecars in chosen.items():
        if len(sidecars) < 2:
            continue
        names = [sidecar.name for sidecar in sidecars]
        for sidecar in sidecars:
            yield finding(CONFLICTING_SIDECAR_SELECTORS, sidecar, ("spec", "workloadSelector"), names, namespace, name)
