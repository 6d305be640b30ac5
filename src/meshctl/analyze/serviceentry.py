"""ServiceEntries whose TCP ports need a virtual IP (Istio's serviceentry.Analyzer)."""

from __future__ import annotations

from collections.abc import Iterator

from meshctl.analyze.context import AnalysisContext
from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.messages import SERVICE_ENTRY_ADDRESSES_REQUIRED
from meshctl.config.kinds.networking import ServiceEntry

__all__ = ["check"]


def check(ctx: AnalysisContext) -> Iterator[Finding]:
    """IST0134: a TCP (or protocol-less) port of a ServiceEntry without addresses is matched
    by port alone, so every such entry on that port collides; Istio's DNS proxy can allocate
    addresses instead (ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE)."""
    mesh = ctx.mesh
    if mesh.metadata("ISTIO_META_DNS_CAPTURE") == "true" and mesh.metadata("ISTIO_META_DNS_AUTO_ALLOCATE") == "true":
        return
    for entry in ctx.of("ServiceEntry"):
        spec = entry.view_as(ServiceEntry)
        if spec.addresses:
            continue
        for index, port in enumerate(spec.ports):
            if port.protocol.upper() in ("", "TCP"):
                yield finding(SERVICE_ENTRY_ADDRESSES_REQUIRED, entry, ("spec", "ports", index, "name"))
