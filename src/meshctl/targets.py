"""What the user names a proxy by: `POD[.NS]`, `pod/NAME[.NS]` or `deploy/NAME[.NS]`.

Every command that takes a proxy (translate, bootstrap, proxy-config, proxy-status) parses it
here, so a spelling that works for one works for all. Offline, the model finds the named pod or
Deployment among the input files; live, `meshctl.kube` finds it through the API server.

The spellings are kubectl's (resource type, short name, plural, `TYPE.GROUP`; any case) and the
namespace rule is istioctl's: what follows the last dot of the name, else `-n`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from meshctl.errors import UsageError

__all__ = ["USAGE", "Target", "TargetKind", "parse_target"]

USAGE = "POD[.NS] or deploy/NAME[.NS]"
"""How help texts and messages show the accepted forms."""


class TargetKind(enum.StrEnum):
    POD = "pod"
    DEPLOYMENT = "deployment"


_KINDS = {
    "": TargetKind.POD,
    "po": TargetKind.POD,
    "pod": TargetKind.POD,
    "pods": TargetKind.POD,
    "deploy": TargetKind.DEPLOYMENT,
    "deployment": TargetKind.DEPLOYMENT,
    "deployments": TargetKind.DEPLOYMENT,
    "deployment.apps": TargetKind.DEPLOYMENT,
    "deployments.apps": TargetKind.DEPLOYMENT,
}


@dataclass(frozen=True, slots=True)
class Target:
    """A pod or a Deployment (whose first pod stands for it), by name and namespace."""

    kind: TargetKind
    name: str
    namespace: str

    @property
    def is_pod(self) -> bool:
        return self.kind is TargetKind.POD

    @property
    def dotted(self) -> str:
        """`NAME.NS`: for a pod, its proxy ID as istiod and istioctl print it."""
        return f"{self.name}.{self.namespace}"

    def __str__(self) -> str:
        return self.dotted if self.is_pod else f"deploy/{self.dotted}"


def parse_target(text: str, default_namespace: str) -> Target:
    """`[TYPE/]NAME[.NS]` as a Target; `default_namespace` (`-n`) applies when there is no `.NS`.

    Raises UsageError for a type other than a pod or a Deployment, and for an empty name or
    namespace (`pod.`, `.ns`, `deploy/`).
    """
    kind_text, _, rest = text.rpartition("/")
    kind = _KINDS.get(kind_text.lower())
    if kind is None:
        raise UsageError(
            f'unsupported resource type "{kind_text}" in "{text}"; use POD[.NS], pod/NAME[.NS] or deploy/NAME[.NS]'
        )
    name, dot, suffix = rest.rpartition(".")
    name, namespace = (name, suffix) if dot else (suffix, default_namespace)
    if not name or not namespace:
        raise UsageError(f'invalid target "{text}"; use {USAGE}')
    return Target(kind, name, namespace)
