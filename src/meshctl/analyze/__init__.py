"""Cross-resource checks (the seed's Galley), reported with Istio's IST message codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from meshctl.config.paths import FieldPath
from meshctl.config.resource import Resource

Level = Literal["Error", "Warning", "Info"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One analyzer message, printed like `istioctl analyze`:
    `Warning [IST0101] (VirtualService default/reviews reviews.yaml:12) message`."""

    level: Level
    code: str
    message: str
    resource: Resource
    path: FieldPath = ()

    def __str__(self) -> str:
        origin = f"{self.resource.ref()} {self.resource.where(self.path)}"
        return f"{self.level} [{self.code}] ({origin}) {self.message}"


def run(resources: Sequence[Resource]) -> list[Finding]:
    """Every finding for a set of resources, sorted by file position."""
    return []
