"""Istio annotations on Kubernetes objects: unknown, misplaced, deprecated or invalid ones
(Istio's annotations.K8sAnalyzer).

An annotation is Istio's when its prefix (before the `/`) ends in `istio.io`, or when it is the
one Kubernetes annotation Istio documents, `kubernetes.io/ingress.class`. The table is Istio's
(istio/api `annotation/annotations.yaml`): where each may be placed, and which are deprecated.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.messages import DEPRECATED_ANNOTATION, INVALID_ANNOTATION, MISPLACED_ANNOTATION, UNKNOWN_ANNOTATION
from meshctl.config.resource import Resource
from meshctl.inject.annotations import VALIDATORS
from meshctl.model.injection import INJECT_LABEL, REVISION_LABEL

__all__ = ["ANY", "Annotation", "INGRESS_CLASS", "INJECT", "KINDS", "TABLE", "check", "istio_annotation"]

ANY = "Any"
INGRESS_CLASS = "kubernetes.io/ingress.class"
INJECT = INJECT_LABEL
KINDS = ("Namespace", "Service", "Pod", "Deployment")
"""The kinds whose annotations Istio checks."""


@dataclass(frozen=True, slots=True)
class Annotation:
    """Where an annotation may be placed, and whether Istio has deprecated it."""

    resources: tuple[str, ...]
    deprecated: bool = False


_POD = Annotation(("Pod",))
_POD_DEPRECATED = Annotation(("Pod",), deprecated=True)

TABLE: Mapping[str, Annotation] = {
    "alpha.istio.io/canonical-serviceaccounts": Annotation(("Service",), deprecated=True),
    "alpha.istio.io/identity": _POD_DEPRECATED,
    "alpha.istio.io/kubernetes-serviceaccounts": Annotation(("Service",), deprecated=True),
    "ambient.istio.io/bypass-inbound-capture": _POD,
    "ambient.istio.io/redirection": _POD,
    "galley.istio.io/analyze-suppress": Annotation((ANY,)),
    "gateway.istio.io/controller-version": Annotation((ANY,)),
    "inject.istio.io/templates": _POD,
    "install.operator.istio.io/chart-owner": Annotation((ANY,)),
    "install.operator.istio.io/owner-generation": Annotation((ANY,)),
    "install.operator.istio.io/version": Annotation((ANY,)),
    "istio.io/autoRegistrationGroup": Annotation(("WorkloadEntry",)),
    "istio.io/connectedAt": Annotation(("WorkloadEntry",)),
    "istio.io/disconnectedAt": Annotation(("WorkloadEntry",)),
    "istio.io/dry-run": Annotation(("AuthorizationPolicy",)),
    "istio.io/reroute-virtual-interfaces": _POD,
    REVISION_LABEL: _POD,
    "istio.io/workloadController": Annotation(("WorkloadEntry",)),
    INGRESS_CLASS: Annotation(("Ingress",)),
    "networking.istio.io/exportTo": Annotation(("Service",)),
    "prometheus.istio.io/merge-metrics": _POD,
    "proxy.istio.io/config": _POD,
    "proxy.istio.io/overrides": _POD,
    "readiness.status.sidecar.istio.io/applicationPorts": _POD,
    "readiness.status.sidecar.istio.io/failureThreshold": _POD,
    "readiness.status.sidecar.istio.io/initialDelaySeconds": _POD,
    "readiness.status.sidecar.istio.io/periodSeconds": _POD,
    "sidecar.istio.io/agentLogLevel": _POD,
    "sidecar.istio.io/bootstrapOverride": _POD,
    "sidecar.istio.io/componentLogLevel": _POD,
    "sidecar.istio.io/controlPlaneAuthPolicy": _POD_DEPRECATED,
    "sidecar.istio.io/discoveryAddress": _POD_DEPRECATED,
    "sidecar.istio.io/enableCoreDump": _POD,
    "sidecar.istio.io/extraStatTags": _POD,
    INJECT: _POD_DEPRECATED,
    "sidecar.istio.io/interceptionMode": _POD,
    "sidecar.istio.io/logLevel": _POD,
    "sidecar.istio.io/nativeSidecar": _POD,
    "sidecar.istio.io/proxyCPU": _POD,
    "sidecar.istio.io/proxyCPULimit": _POD,
    "sidecar.istio.io/proxyImage": _POD,
    "sidecar.istio.io/proxyImageType": _POD,
    "sidecar.istio.io/proxyMemory": _POD,
    "sidecar.istio.io/proxyMemoryLimit": _POD,
    "sidecar.istio.io/rewriteAppHTTPProbers": _POD,
    "sidecar.istio.io/statsHistogramBuckets": _POD,
    "sidecar.istio.io/statsInclusionPrefixes": _POD_DEPRECATED,
    "sidecar.istio.io/statsInclusionRegexps": _POD_DEPRECATED,
    "sidecar.istio.io/statsInclusionSuffixes": _POD_DEPRECATED,
    "sidecar.istio.io/status": _POD,
    "sidecar.istio.io/userVolume": _POD,
    "sidecar.istio.io/userVolumeMount": _POD,
    "status.sidecar.istio.io/port": _POD,
    "traffic.sidecar.istio.io/excludeInboundPorts": _POD,
    "traffic.sidecar.istio.io/excludeInterfaces": _POD,
    "traffic.sidecar.istio.io/excludeOutboundIPRanges": _POD,
    "traffic.sidecar.istio.io/excludeOutboundPorts": _POD,
    "traffic.sidecar.istio.io/includeInboundPorts": _POD,
    "traffic.sidecar.istio.io/includeOutboundIPRanges": _POD,
    "traffic.sidecar.istio.io/includeOutboundPorts": _POD,
    "traffic.sidecar.istio.io/kubevirtInterfaces": _POD,
}

_EXTRA = {INJECT: ' in favor of the "sidecar.istio.io/inject" label'}
"""What Istio adds to the deprecation of an annotation that has a replacement."""


def istio_annotation(name: str) -> bool:
    return name == INGRESS_CLASS or name.split("/", 1)[0].endswith("istio.io")


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0108 unknown, IST0135 deprecated, IST0107 misplaced, IST0125 invalid value."""
    for kind in KINDS:
        for resource in ctx.of(kind):
            yield from _annotations(resource, kind)


def _annotations(resource: Resource, kind: str) -> Iterator[Finding]:
    for name, value in resource.annotations.items():
        if not istio_annotation(name):
            continue
        path = ("metadata", "annotations", name)
        known = TABLE.get(name)
        if known is None:
            yield finding(UNKNOWN_ANNOTATION, resource, path, name)
            continue
        if known.deprecated and not (name == INJECT and INJECT in resource.labels):
            yield finding(DEPRECATED_ANNOTATION, resource, path, name, _EXTRA.get(name, ""))
        if ANY in known.resources:
            continue
        if kind not in known.resources:
            yield finding(MISPLACED_ANNOTATION, resource, path, name, ", ".join(known.resources))
            continue
        check_value = VALIDATORS.get(name)  # the injector's own checks, as Istio's analyzer uses them
        problem = check_value(value) if check_value is not None else None
        if problem:
            yield finding(INVALID_ANNOTATION, resource, path, name, problem)
