"""Checks of Sidecars against each other: one default per namespace, one Sidecar per workload."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.messages import CONFLICTING_SIDECAR_SELECTORS, MULTIPLE_SIDECARS_WITHOUT_SELECTOR
from meshctl.config.kinds.networking import Sidecar
from meshctl.config.resource import Resource
from meshctl.model.selectors import selects
from meshctl.model.service import POD, Workload


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
    """IST0111 and IST0110: Istio picks one Sidecar per workload, and which one is undefined."""
    defaults: dict[str, list[Resource]] = defaultdict(list)
    for sidecar in ctx.of("Sidecar"):
        if not _selector(sidecar):
            defaults[sidecar.namespace].append(sidecar)
    for namespace, sidecars in defaults.items():
        if len(sidecars) < 2:
            continue
        names = [sidecar.name for sidecar in sidecars]
        for sidecar in sidecars:
            yield finding(MULTIPLE_SIDECARS_WITHOUT_SELECTOR, sidecar, ("spec",), names, namespace)
    for name, workload in _pods(ctx.registry.workloads):
        chosen = [
            sidecar for sidecar in ctx.of("Sidecar")
            if sidecar.namespace == workload.namespace and _selector(sidecar)
            and selects(_selector(sidecar), workload.labels)
        ]
        if len(chosen) < 2:
            continue
        names = [sidecar.name for sidecar in chosen]
        for sidecar in chosen:
            yield finding(CONFLICTING_SIDECAR_SELECTORS, sidecar, ("spec", "workloadSelector"), names,
                          workload.namespace, name)
