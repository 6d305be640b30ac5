"""What an analyzer reports: one message of an Istio message type about one resource."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshctl.analyze.messages import Level, MessageType
from meshctl.config.paths import FieldPath
from meshctl.config.resource import Resource

__all__ = ["Finding", "finding", "selector_text"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One analyzer message, printed as `istioctl analyze` prints it:
    `Warning [IST0101] (VirtualService default/reviews reviews.yaml:12) message`.

    The line is the one of the field at `path` when the input has that field, else the line the
    resource starts on: Istio's analyzers point at the offending field the same way, and fall
    back the same way when the field is absent (a missing `caCertificates`). `at`, when set, is
    a line the analyzer knows from elsewhere (a schema problem's own line).
    """

    type: MessageType
    message: str
    resource: Resource
    path: FieldPath = ()
    at: int = 0
    level_override: Level | None = None

    @property
    def level(self) -> Level:
        return self.level_override or self.type.level

    @property
    def code(self) -> str:
        return self.type.code

    @property
    def line(self) -> int:
        return self.at or self.resource.lines.get(self.path) or self.resource.origin.line

    @property
    def origin(self) -> str:
        """istioctl's friendly name of the resource: `Kind namespace/name`."""
        return self.resource.ref()

    @property
    def reference(self) -> str:
        """Where the resource was read: `file:line`, the file alone for JSON (whose lines
        istioctl does not track), nothing for objects read from a cluster or made up."""
        file = self.resource.origin.file
        if not file:
            return ""
        if file.endswith(".json") or not self.line:
            return file
        return f"{file}:{self.line}"

    def __str__(self) -> str:
        where = f" {self.reference}" if self.reference else ""
        return f"{self.level} [{self.code}] ({self.origin}{where}) {self.message}"


def finding(kind: MessageType, resource: Resource, path: FieldPath, *args: object, level: Level | None = None,
            at: int = 0) -> Finding:
    """A Finding of message type `kind`, its template filled with `args`; `level` overrides
    the type's level where the analyzer does."""
    return Finding(kind, kind.text(*args), resource, path, at, level)


def selector_text(selector: Mapping[str, str]) -> str:
    """A label selector the way Kubernetes prints one: `app=x,version=v1`, keys sorted."""
    return ",".join(f"{key}={selector[key]}" for key in sorted(selector))
