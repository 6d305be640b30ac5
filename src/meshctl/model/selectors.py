"""How an object picks workloads (label selectors) and who may see it (exportTo).

Every Istio kind scopes itself with one or both of these rules, and so do Kubernetes Services
(selector) and their `networking.istio.io/exportTo` annotation. They live here once, so that
translation and analysis cannot come to disagree about which workloads a selector picks or which
namespaces see a service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["ALL_NAMESPACES", "export_set", "selects", "visible"]

ALL_NAMESPACES = frozenset({"*"})


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Kubernetes equality selection: every selector label is present with the same value.

    An empty selector selects everything; callers for which "no selector" means "nothing" (a
    Service without a selector, a Sidecar without a workloadSelector) say so themselves.
    """
    return all(labels.get(key) == value for key, value in selector.items())


def export_set(values: Iterable[str] | None, namespace: str) -> frozenset[str]:
    """An exportTo list resolved: `.` becomes the owner's namespace; none at all means `*`.

    `~` (nobody) stays as written: no namespace is called `~`, so `visible` never matches it.
    """
    resolved = frozenset(namespace if value == "." else value for value in values or () if value)
    return resolved or ALL_NAMESPACES


def visible(export_to: frozenset[str], namespace: str) -> bool:
    """Whether an object exported to `export_to` (see `export_set`) is seen from `namespace`."""
    return "*" in export_to or namespace in export_to
