"""Which workloads carry a sidecar, per Istio's injection labels and annotations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["InjectionPolicy"]


@dataclass(frozen=True, slots=True)
class InjectionPolicy:
    """The injection labels of the input's namespaces (Namespace objects), by namespace name."""

    namespaces: Mapping[str, Mapping[str, str]]

    def injected(self, namespace: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        """Pod labels and annotations decide first, then the namespace label.

        Without a Namespace object in the input the namespace is assumed to be part of the mesh:
        offline input describes a mesh, and a proxy exists only for injected workloads.
        """
        mode = labels.get("security.istio.io/tlsMode")
        if mode:
            return mode == "istio"
        if "sidecar.istio.io/status" in annotations:
            return True
        explicit = labels.get("sidecar.istio.io/inject", annotations.get("sidecar.istio.io/inject"))
        if explicit is not None:
            return explicit == "true"
        ns_labels = self.namespaces.get(namespace)
        if ns_labels is None:
            return True
        return ns_labels.get("istio-injection") == "enabled" or "istio.io/rev" in ns_labels
