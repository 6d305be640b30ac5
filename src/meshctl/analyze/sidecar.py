"""Checks of Sidecars against each other: one default per namespace, one Sidecar per workload."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from meshctl.analyze.finding import (
    CONFLICTING_SIDECAR_SELECTORS,
    MULTIPLE_SIDECARS_WITHOUT_SELECTOR,
    Finding,
    finding,
    go_list,
    go_quote,
)
from meshctl.analyze.index import MeshIndex, selects
from meshctl.config.resource import Resource


def _selector(sidecar: Resource) -> dict[str, str]:
    return (sidecar.spec.get("workloadSelector") or {}).get("labels") or {}


def check(index: MeshIndex) -> Iterator[Finding]:
    """IST0111 and IST0110: Istio picks one Sidecar per workload, and which one is undefined."""
    defaults: dict[str, list[Resource]] = defaultdict(list)
    for sidecar in index.of("Sidecar"):
        if not _selector(sidecar):
            defaults[sidecar.namespace].append(sidecar)
    for namespace, sidecars in defaults.items():
        if len(sidecars) < 2:
            continue
        names = go_list(sidecar.name for sidecar in sidecars)
        for sidecar in sidecars:
            yield finding(MULTIPLE_SIDECARS_WITHOUT_SELECTOR, sidecar, ("spec",),
                          f"The Sidecars {names} in namespace {go_quote(namespace)} have no workload selector, "
                          "which can lead to undefined behavior.")
    for workload in index.workloads:
        if not workload.is_pod:
            continue
        chosen = [
            sidecar for sidecar in index.of("Sidecar")
            if sidecar.namespace == workload.namespace and _selector(sidecar)
            and selects(_selector(sidecar), workload.labels)
        ]
        if len(chosen) < 2:
            continue
        names = go_list(sidecar.name for sidecar in chosen)
        for sidecar in chosen:
            yield finding(CONFLICTING_SIDECAR_SELECTORS, sidecar, ("spec", "workloadSelector"),
                          f"The Sidecars {names} in namespace {go_quote(workload.namespace)} select the same "
                          f"workload pod {go_quote(workload.name)}, which can lead to undefined behavior.")
