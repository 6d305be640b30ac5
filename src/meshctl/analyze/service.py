"""Checks of Kubernetes Services: port names that let Istio know the protocol."""

from __future__ import annotations

from collections.abc import Iterator

from meshctl.analyze.finding import PORT_NAME_CONVENTION, Finding, finding
from meshctl.analyze.index import MeshIndex
from meshctl import protocols

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "local-path-storage", "istio-system"})


def check(index: MeshIndex) -> Iterator[Finding]:
    """IST0118: without `<protocol>[-suffix]` names or appProtocol, Istio falls back to sniffing."""
    for service in index.of("Service"):
        if service.namespace in SYSTEM_NAMESPACES:
            continue
        for position, port in enumerate(service.spec.get("ports") or []):
            name = port.get("name") or ""
            if port.get("appProtocol") or protocols.known(name.split("-", 1)[0]):
                continue
            target = port.get("targetPort", port["port"])
            yield finding(PORT_NAME_CONVENTION, service, ("spec", "ports", position),
                          f"Port name {name} (port: {port['port']}, targetPort: {target}) doesn't follow the "
                          "naming convention of Istio port.")
