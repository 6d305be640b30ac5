"""A validated configuration object with its identity and its origin (file and line)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from meshctl.config.paths import FieldPath

__all__ = ["Origin", "Resource", "SensitiveSpec"]

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Origin:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class SensitiveSpec(dict[str, Any]):
    """The body of an object whose values are secrets (a Secret's keys): shows its field names,
    never their content, wherever the object is printed or logged."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<sensitive: {', '.join(sorted(self))}>"

    __str__ = __repr__


@dataclass(frozen=True, slots=True, eq=False)
class Resource:
    """One Kubernetes-style object after validation.

    `spec` is the kind's body: the `spec` field for most kinds, the top-level fields for kinds
    without one (Endpoints, EndpointSlice). It is treated as read-only everywhere; code that
    reads fields reads `view`, the typed message built from it once after validation
    (`view_as(DestinationRule)` gives it its type), and `status_view` for the kinds whose status
    meshctl reads (`status_as(PodStatus)`).
    `revision` is a content hash: equal revisions mean equal objects, which lets caches and the
    directory watcher skip work for unchanged objects. `generation` is the API server's
    `metadata.generation` (0 when the input has none), which a status reports having observed.
    """

    kind: str
    group: str
    version: str
    namespace: str
    name: str
    spec: Mapping[str, Any]
    origin: Origin
    revision: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    created: str = ""
    generation: int = 0
    status: Mapping[str, Any] = field(default_factory=dict)
    lines: Mapping[FieldPath, int] = field(default_factory=dict, repr=False)
    view: object = field(default=None, repr=False)
    status_view: object = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    def view_as(self, message: type[V]) -> V:
        """The typed view, as the message class the caller expects for this kind."""
        if not isinstance(self.view, message):
            raise TypeError(f"{self.ref()} has a {type(self.view).__name__} view, not a {message.__name__}")
        return self.view

    def status_as(self, message: type[V]) -> V:
        """The typed view of the status, as the message class the caller expects for this kind."""
        if not isinstance(self.status_view, message):
            raise TypeError(f"{self.ref()} has a {type(self.status_view).__name__} status view, not a {message.__name__}")
        return self.status_view

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def ref(self) -> str:
        """`Kind namespace/name`, the way errors and findings name a resource (the kind as
        written: a Gateway API Gateway, kept as `KubernetesGateway`, is a Gateway)."""
        kind = "Gateway" if self.kind == "KubernetesGateway" else self.kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"

    def line_of(self, path: FieldPath) -> int:
        for cut in range(len(path), 0, -1):
            found = self.lines.get(path[:cut])
            if found is not None:
                return found
        return self.origin.line

    def where(self, path: FieldPath = ()) -> str:
        return f"{self.origin.file}:{self.line_of(path)}"
