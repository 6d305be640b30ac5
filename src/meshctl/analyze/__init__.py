"""Cross-resource checks (the seed's Galley), reported with Istio's IST message codes.

The loader checks each resource on its own; the analyzers here look at resources together: a
route to a subset no DestinationRule defines, a VirtualService bound to a Gateway that does not
exist, two VirtualServices fighting over one host. Each check module yields `Finding`s; `run`
collects them in file order so the output reads like the input.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshctl.analyze import destinationrule, gateway, service, sidecar, virtualservice
from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, Level
from meshctl.config.resource import Resource

__all__ = ["Finding", "Level", "run"]

CHECKS = (virtualservice.check, destinationrule.check, gateway.check, sidecar.check, service.check)


def run(resources: Sequence[Resource]) -> list[Finding]:
    """Every finding for a set of resources, sorted by file position."""
    ctx = AnalysisContext(resources)
    findings = [item for check in CHECKS for item in check(ctx)]
    return sorted(findings, key=lambda item: (item.resource.origin.file, item.line, item.code, item.message))
