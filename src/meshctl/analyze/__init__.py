"""Cross-resource checks (the seed's Galley), reported with Istio's IST message codes.

The loader checks each resource on its own; the analyzers here look at resources together: a
route to a subset no DestinationRule defines, a VirtualService bound to a Gateway that does not
exist, two VirtualServices fighting over one host. Each analyzer carries the name Istio gives
its counterpart (`istioctl analyze -L` lists the same names) and yields `Finding`s; `run`
collects them in file order so the output reads like the input. `meshctl validate` and
`meshctl analyze` both run exactly these.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from meshctl.analyze import (
    deployment,
    destinationrule,
    gateway,
    injection,
    service,
    serviceentry,
    sidecar,
    virtualservice,
)
from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding
from meshctl.analyze.messages import Level
from meshctl.config.resource import Resource
from meshctl.model.meshconfig import MeshConfig

__all__ = ["ANALYZERS", "Analyzer", "Finding", "Level", "run"]


@dataclass(frozen=True, slots=True)
class Analyzer:
    """One analyzer: Istio's name for it, what it checks, and the check."""

    name: str
    description: str
    check: Callable[[AnalysisContext], Iterable[Finding]]


ANALYZERS: tuple[Analyzer, ...] = (
    Analyzer("deployment.MultiServiceAnalyzer", "Checks association between services and pods",
             deployment.service_association),
    Analyzer("destinationrule.CaCertificateAnalyzer", "Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL",
             destinationrule.ca_certificates),
    Analyzer("destinationrule.PodNotSelectedAnalyzer",
             "Checks that DestinationRule hosts exist and that their subsets select pods", destinationrule.check),
    Analyzer("gateway.IngressGatewayPortAnalyzer", "Checks a gateway's ports against the gateway's Kubernetes service",
             gateway.check),
    Analyzer("gateway.ConflictingGatewayAnalyzer", "Checks a gateway's selector, port number and hosts",
             gateway.conflicts),
    Analyzer("gateway.CertificateAnalyzer", "Checks a gateway certificate", gateway.duplicate_certificates),
    Analyzer("injection.Analyzer", "Checks conditions related to Istio sidecar injection", injection.check),
    Analyzer("service.PortNameAnalyzer", "Checks the port names associated with each service", service.check),
    Analyzer("serviceentry.Analyzer", "Checks the validity of ServiceEntry", serviceentry.check),
    Analyzer("sidecar.SelectorAnalyzer",
             "Validates that sidecars that define a workload selector match at least one pod, and that there "
             "aren't multiple sidecar resources that select overlapping pods", sidecar.check),
    Analyzer("virtualservice.Analyzer", "Checks VirtualServices against gateways, hosts, subsets and each other",
             virtualservice.check),
)


def run(resources: Sequence[Resource], mesh: MeshConfig | None = None,
        analyzers: Collection[str] | None = None, assumed: Sequence[Resource] = ()) -> list[Finding]:
    """Every finding of the analyzers (all, or those named) on a set of resources (and those
    assumed, see `AnalysisContext`), sorted by file position."""
    ctx = AnalysisContext(resources, mesh, assumed)
    chosen = [analyzer for analyzer in ANALYZERS if analyzers is None or analyzer.name in analyzers]
    findings = [item for analyzer in chosen for item in analyzer.check(ctx)]
    return sorted(findings, key=lambda item: (item.resource.origin.file, item.line, item.code, item.message))
