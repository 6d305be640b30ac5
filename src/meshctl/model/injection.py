"""Which workloads carry a sidecar, per Istio's injection labels and annotations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DATAPLANE_MODE_LABEL", "INJECTION_LABEL", "INJECT_LABEL", "InjectionPolicy", "REVISION_LABEL"]

# Istio's injection labels, named once for the model, the analyzers, the webhooks and install.
INJECTION_LABEL = "istio-injection"
"""On a namespace: `enabled` or `disabled`; wins over a revision label."""
REVISION_LABEL = "istio.io/rev"
"""On a namespace (or pod): the control plane revision that injects it; on istiod's own objects."""
DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode"
"""On a namespace or pod: `ambient` means no sidecar."""
INJECT_LABEL = "sidecar.istio.io/inject"
"""On a pod, as a label (or, deprecated, an annotation): `true` or `false`."""


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
        explicit = labels.get(INJECT_LABEL, annotations.get(INJECT_LABEL))
        if explicit is not None:
            return explicit == "true"
        ns_labels = self.namespaces.get(namespace)
        if ns_labels is None:
            return True
        return ns_labels.get(INJECTION_LABEL) == "enabled" or REVISION_LABEL in ns_labels
