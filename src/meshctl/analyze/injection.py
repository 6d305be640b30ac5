"""Sidecar injection: namespaces without an injection label, or with several, and pods of
injected namespaces that run without their proxy (Istio's injection.Analyzer)."""

from __future__ import annotations

from collections.abc import Iterator

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.messages import NAMESPACE_MULTIPLE_INJECTION_LABELS, NAMESPACE_NOT_INJECTED, POD_MISSING_PROXY
from meshctl.config.kinds.kubernetes import PodSpec
from meshctl.model.injection import DATAPLANE_MODE_LABEL, INJECT_LABEL, INJECTION_LABEL, REVISION_LABEL

__all__ = ["PROXY_CONTAINER", "check"]

PROXY_CONTAINER = "istio-proxy"


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0102, IST0123 per Namespace object; IST0103 per Pod of a namespace labelled
    `istio-injection=enabled` that has no `istio-proxy` container (nor opted out)."""
    injected: set[str] = set()
    for namespace in ctx.of("Namespace"):
        if namespace.name == ctx.mesh.root_namespace:
            continue
        labels = namespace.labels
        legacy = labels.get(INJECTION_LABEL)
        found = [f"{INJECTION_LABEL}={legacy}"] if legacy is not None else []
        found += [f"{key}={labels[key]}" for key in (REVISION_LABEL, DATAPLANE_MODE_LABEL)
                  if key in labels and legacy in (None, "enabled")]
        if len(found) > 1:
            yield finding(NAMESPACE_MULTIPLE_INJECTION_LABELS, namespace, (), found)
        if labels.get(DATAPLANE_MODE_LABEL) == "ambient":
            continue
        if not legacy and REVISION_LABEL not in labels:
            yield finding(NAMESPACE_NOT_INJECTED, namespace, ("metadata", "name"), namespace.name, namespace.name)
        elif legacy == "enabled":
            injected.add(namespace.name)
    for pod in ctx.of("Pod"):
        if pod.namespace not in injected:
            continue
        choice = pod.labels.get(INJECT_LABEL, pod.annotations.get(INJECT_LABEL, ""))
        spec = pod.view_as(PodSpec)
        if choice.lower() == "false" or spec.host_network:
            continue
        if not any(container.name == PROXY_CONTAINER for container in (*spec.containers, *spec.init_containers)):
            yield finding(POD_MISSING_PROXY, pod, (), f"{pod.namespace}/{pod.name}")
