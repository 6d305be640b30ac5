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
    annotation,
    authz,
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
    Analyzer("annotations.K8sAnalyzer", "Checks for misplaced and invalid Istio annotations in Kubernetes resources",
             annotation.check),
    Analyzer("applicationUID.Analyzer", "Checks invalid application UID", deployment.application_uid),
    Analyzer("auth.AuthorizationPoliciesAnalyzer", "Checks the validity of authorization policies", authz.check),
    Analyzer("deployment.MultiServiceAnalyzer", "Checks association between services and pods",
             deployment.service_association),
    Analyzer("destinationrule.CaCertificateAnalyzer", "Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL",
             destinationrule.ca_certificates),
    Analyzer("destinationrule.MergedDestinationRulesAnalyzer",
             "Says what Istio's merge of DestinationRules for one host drops (meshctl's own)",
             destinationrule.merged_rules),
    Analyzer("destinationrule.SubsetSelectPodAnalyzer", "Checks if pods are selected by subsets in destination rules",
             destinationrule.subsets_select_pods),
    Analyzer("gateway.CertificateAnalyzer", "Checks a gateway certificate", gateway.duplicate_certificates),
    Analyzer("gateway.ConflictingGatewayAnalyzer", "Checks a gateway's selector, port number and hosts",
             gateway.conflicts),
    Analyzer("gateway.IngressGatewayPortAnalyzer", "Checks a gateway's ports against the gateway's Kubernetes service "
             "ports", gateway.check),
    Analyzer("injection.Analyzer", "Checks conditions related to Istio sidecar injection", injection.check),
    Analyzer("service.PortNameAnalyzer", "Checks the port names associated with each service", service.check),
    Analyzer("serviceentry.Analyzer", "Checks the validity of ServiceEntry", serviceentry.check),
    Analyzer("sidecar.SelectorAnalyzer",
             "Validates that sidecars that define a workload selector match at least one pod, and that there "
             "aren't multiple sidecar resources that select overlapping pods", sidecar.check),
    Analyzer("virtualservice.ConflictingMeshGatewayHostsAnalyzer",
             "Checks if multiple virtual services associated with the mesh gateway have conflicting hosts",
             virtualservice.mesh_host_conflicts),
    Analyzer("virtualservice.DelegateAnalyzer", "Checks that delegated VirtualServices exist (meshctl's own)",
             virtualservice.delegates),
    Analyzer("virtualservice.DestinationHostAnalyzer",
             "Checks the destination hosts associated with each virtual service", virtualservice.destination_hosts),
    Analyzer("virtualservice.DestinationRuleAnalyzer",
             "Checks the destination rules associated with each virtual service", virtualservice.destination_subsets),
    Analyzer("virtualservice.GatewayAnalyzer", "Checks the gateways associated with each virtual service",
             virtualservice.gateways),
    Analyzer("virtualservice.JWTClaimRouteAnalyzer",
             "Checks the VirtualService using JWT claim based routing has corresponding RequestAuthentication",
             virtualservice.jwt_claim_routes),
    Analyzer("schema.ValidationAnalyzer.VirtualService",
             "Runs schema validation as an analyzer and reports any violations (VirtualService rules that never "
             "match)", virtualservice.unreachable_rules),
)


def run(resources: Sequence[Resource], mesh: MeshConfig | None = None,
        analyzers: Collection[str] | None = None, assumed: Sequence[Resource] = ()) -> list[Finding]:
    """Every finding of the analyzers (all, or those named) on a set of resources (and those
    assumed, see `AnalysisContext`), sorted by file position."""
    ctx = AnalysisContext(resources, mesh, assumed)
    chosen = [analyzer for analyzer in ANALYZERS if analyzers is None or analyzer.name in analyzers]
    findings = [item for analyzer in chosen for item in analyzer.check(ctx)]
    return sorted(findings, key=lambda item: (item.resource.origin.file, item.line, item.code, item.message))
