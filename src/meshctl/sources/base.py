"""The interface every configuration source offers the server.

A source yields complete, accepted resource sets (never a diff), each with the inputs (files, or
a cluster's objects) it currently refuses and why. The server never sees a half-valid set: refusing bad input and keeping the last
good version is the source's job, so it can do it per file (or per object, for Kubernetes).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from meshctl.config.resource import Resource

__all__ = ["ConfigSource", "Rejection", "SourceUpdate", "distinct"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input whose current content is refused, with the loader's problems (file:line: field: why).

    `file` names the input: a file's path, or a cluster object as `Kind namespace/name`.
    """

    file: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceUpdate:
    """The accepted resources right now, and what is being refused."""

    resources: tuple[Resource, ...]
    rejected: tuple[Rejection, ...] = ()


class ConfigSource(Protocol):
    def updates(self) -> AsyncIterator[SourceUpdate]:
        """The current state first, then one update per (debounced) change, until cancelled."""
        ...


async def distinct(updates: AsyncIterator[SourceUpdate]) -> AsyncIterator[SourceUpdate]:
    """`updates` without those equal to the one before: a batch of changes that altered nothing
    accepted or refused (a file saved unchanged, a pod's container status) is no update. Closing
    this closes `updates` at once, so the source stops watching."""
    last: tuple[object, ...] | None = None
    async with contextlib.aclosing(updates) as inner:  # type: ignore[type-var]
        async for update in inner:
            signature = (
                tuple((r.origin.file, r.kind, r.namespace, r.name, r.revision) for r in update.resources),
                update.rejected,
            )
            if signature != last:
                last = signature
                yield update
