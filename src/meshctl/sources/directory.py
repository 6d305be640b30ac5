"""A directory of YAML/JSON files as a live configuration source.

Each file is read with the strict loader on its own. A file whose new content is refused keeps
serving its last good version (a half-saved file or a typo must not withdraw routes from running
proxies); the refusal, with the loader's file:line messages, is reported alongside. Deleting a
file forgets it. Changes are watched with watchfiles and debounced like Istio's pushes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Hashable, Iterable
from pathlib import Path

from meshctl.config.files import YAML_SUFFIXES
from meshctl.config.loader import DEFAULT_NAMESPACE, load_file
from meshctl.config.resource import Resource
from meshctl.errors import UsageError
from meshctl.sources.base import Rejection, SourceUpdate
from meshctl.sources.debounce import END, debounce

log = logging.getLogger("meshctl.sources")

# watchfiles' own grouping: report a batch after this many ms without events (our debounce runs
# on top and decides the real quiet period), and never hold a batch longer than the second value.
_WATCH_STEP_MS = 5
_WATCH_GROUP_MS = 50


def _wanted(path: Path, root: Path) -> bool:
    """YAML/JSON files, skipping hidden files and directories (editor swap files, the `..data`
    internals of a mounted ConfigMap) so that nothing is read twice or half-written."""
    relative = path.relative_to(root).parts
    return path.suffix in YAML_SUFFIXES and not any(part.startswith(".") for part in relative)


class DirectorySource:
    """Resources of every file under `root` (recursive), kept current as files change."""

    def __init__(
        self,
        root: str | Path,
        *,
        debounce_after: float = 0.1,
        debounce_max: float = 10.0,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self.root = Path(root)
        self._resolved = self.root.resolve()
        if not self.root.is_dir():
            raise UsageError(f"config directory {str(root)!r} does not exist or is not a directory")
        self.debounce_after = debounce_after
        self.debounce_max = debounce_max
        self.namespace = namespace
        self._good: dict[str, list[Resource]] = {}
        self._rejected: dict[str, tuple[str, ...]] = {}

    def _files(self) -> set[str]:
        return {str(p) for p in self.root.rglob("*") if _wanted(p, self.root) and p.is_file()}

    def scan(self, changed: Iterable[str] | None = None) -> SourceUpdate:
        """Reload new files, the `changed` ones (all when None) and the refused ones; forget
        deleted ones; return the accepted set."""
        present = self._files()
        for gone in (self._good.keys() | self._rejected.keys()) - present:
            self._good.pop(gone, None)
            self._rejected.pop(gone, None)
            log.info("file removed", extra={"file": gone})
        known = self._good.keys() | self._rejected.keys()
        reload = present if changed is None else (present - known) | (present & set(changed)) | (present & self._rejected.keys())
        for file in sorted(reload):
            self._load(file)
        return self.current()

    def _load(self, file: str) -> None:
        result = load_file(file, self.namespace)
        problems = [str(p) for p in result.problems] or self._conflicts(file, result.resources)
        if problems:
            self._rejected[file] = tuple(problems)
            return
        self._good[file] = result.resources
        self._rejected.pop(file, None)

    def _conflicts(self, file: str, resources: list[Resource]) -> list[str]:
        """A file may not redefine an object another accepted file already defines."""
        owners = {r.key: r for other, items in self._good.items() if other != file for r in items}
        return [
            f"{r.where()}: {r.ref()}: defined twice; first definition at {owners[r.key].origin}"
            for r in resources if r.key in owners
        ]

    def current(self) -> SourceUpdate:
        resources = tuple(r for file in sorted(self._good) for r in self._good[file])
        rejected = tuple(Rejection(file, self._rejected[file]) for file in sorted(self._rejected))
        return SourceUpdate(resources, rejected)

    async def updates(self) -> AsyncIterator[SourceUpdate]:
        """The current state, then one update per debounced batch of changes that altered it."""
        queue: asyncio.Queue[set[Hashable] | object] = asyncio.Queue()
        watcher = asyncio.create_task(self._watch(queue))
        await asyncio.sleep(0)
        try:
            update = self.scan()
            last = _signature(update)
            yield update
            async for batch in debounce(queue, self.debounce_after, self.debounce_max):
                update = self.scan(self._as_given(str(path)) for path in batch)
                signature = _signature(update)
                if signature != last:
                    last = signature
                    yield update
        finally:
            watcher.cancel()

    def _as_given(self, path: str) -> str:
        """A watched (absolute) path in the form files are listed in: under the root as the
        user wrote it, so `--config-dir mesh` reports `mesh/a.yaml`, not an absolute path."""
        try:
            return str(self.root / Path(path).relative_to(self._resolved))
        except ValueError:
            return path

    async def _watch(self, queue: asyncio.Queue[set[Hashable] | object]) -> None:
        from watchfiles import awatch

        try:
            async for changes in awatch(
                self.root, watch_filter=None, step=_WATCH_STEP_MS, debounce=_WATCH_GROUP_MS, recursive=True
            ):
                queue.put_nowait({path for _, path in changes})
        finally:
            queue.put_nowait(END)


def _signature(update: SourceUpdate) -> tuple[object, ...]:
    return (
        tuple((r.origin.file, r.kind, r.namespace, r.name, r.revision) for r in update.resources),
        update.rejected,
    )
