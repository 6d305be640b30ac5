"""A directory of YAML/JSON files as a live configuration source.

Each file is read with the strict loader on its own. Whatever goes wrong with the files, the
running proxies keep their routes unless the operator deliberately changed them:

- a file whose new content is refused keeps serving its last good version (a half-saved file
  or a typo must not withdraw routes); so does a file that becomes empty (a truncated write,
  content following a moment later) or unreadable, until it reads cleanly again;
- a subdirectory that cannot be listed is not a deletion: its files keep their last good content;
- files gone are forgotten only if the directory is still there a moment later (`REMOVAL_GRACE`):
  `rm -rf DIR` removes file after file before the directory, and those removals are the first
  half of a replacement, not edits;
- the root itself vanishing or becoming unreadable is an error that keeps the whole last good
  config; the watch follows the path, not the directory it found at start, so a directory
  replaced (`rm -rf DIR; mkdir DIR; cp ...`, `mv NEW DIR`, a symlink swapped) is read again once
  it holds config files and has been quiet for a moment (until then, as for a file that became
  empty, the last good config keeps serving);
- a Kubernetes ConfigMap volume (visible files are symlinks into `..data`, which kubelet swaps
  by renaming a symlink) is applied when the swap happens: every scan compares what each path
  leads to now, not just the paths the watcher named.

Each of these states is reported alongside the accepted set (and so in `/debug/configz`), and
logged once when it begins and when it ends. Only a file that is gone is forgotten. Changes
are watched with watchfiles and debounced like Istio's pushes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path

from meshctl.config.files import Listing, walk
from meshctl.config.loader import DEFAULT_NAMESPACE, FileResult, load_file
from meshctl.config.resource import Resource
from meshctl.errors import UsageError
from meshctl.sources.base import Rejection, SourceUpdate, distinct
from meshctl.sources.debounce import END, debounce

__all__ = ["DirectorySource", "NEW_ROOT", "POLL", "REMOVAL_GRACE", "ROOT_POLL", "SETTLE", "Stamp"]

log = logging.getLogger("meshctl.sources")

# watchfiles' own grouping: report a batch after this many ms without events (our debounce runs
# on top and decides the real quiet period), and never hold a batch longer than the second value.
_WATCH_STEP_MS = 5
_WATCH_GROUP_MS = 50
# How often the watcher checks that the root path still leads to the directory it watches, and
# how long a directory that replaced it must be quiet before it is read (`mkdir DIR` comes
# before the `cp` that fills it).
ROOT_POLL = 0.1
SETTLE = 0.5
# How long a scan that finds files gone waits before it forgets them, to tell a deletion from
# the first steps of `rm -rf DIR` (after which the root itself is gone or replaced).
REMOVAL_GRACE = 0.5
# How often a directory that cannot be watched (inotify refuses part of it) is looked at instead.
POLL = 0.5
# A batch marker: the root path leads to a new directory that has settled; read it.
NEW_ROOT = "<new root>"

Stamp = tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class _Kept:
    """Why a file's last good content is serving instead of what is (or is not) there now."""

    reason: str
    problems: tuple[str, ...]


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
        if not self.root.is_dir():
            raise UsageError(f"config directory {str(root)!r} does not exist or is not a directory")
        self.debounce_after = debounce_after
        self.debounce_max = debounce_max
        self.namespace = namespace
        self._good: dict[str, list[Resource]] = {}
        self._rejected: dict[str, tuple[str, ...]] = {}
        self._stamps: dict[str, Stamp | None] = {}
        self._pin: _Pin | None = None
        self._root_problem = ""
        self._unreadable: dict[str, str] = {}

    # --- reading ---------------------------------------------------------------------------

    def scan(self, changed: Iterable[str] | None = None, *, new_root: bool = False) -> SourceUpdate:
        """Bring the accepted set up to date with the directory and return it.

        Every file whose path now leads to different content is read again, as are `changed`
        (all files when None) and the refused ones. A root that leads to another directory than
        at the last scan is read only with `new_root` (the watcher says it has settled).
        """
        identity, listing, problem = self._list(new_root)
        if listing is not None and self._gone(set(listing.files)) and identity == self._pinned():
            # `rm -rf DIR` unlinks file after file before the directory goes: files missing
            # from the directory still pinned may be the start of its removal, not an edit.
            time.sleep(REMOVAL_GRACE)
            identity, listing, problem = self._list(new_root)
        self._set_root_problem(problem)
        if listing is None:
            return self.current()
        self._repin(identity)
        self._set_unreadable(dict(listing.unreadable))
        present = set(listing.files)
        for gone in sorted(self._gone(present)):
            self._forget(gone)
        hints = present if changed is None else present & set(changed)
        for file in sorted(present):
            stamp = _stamp(file)
            if file in hints or file in self._rejected or file not in self._stamps or stamp != self._stamps[file]:
                self._stamps[file] = stamp
                self._load(file)
        return self.current()

    def _list(self, new_root: bool) -> tuple[tuple[int, int] | None, Listing | None, str]:
        """The root's identity and listing, or why it cannot be read now."""
        try:
            info = os.stat(self.root)
            identity = (info.st_dev, info.st_ino)
            if self._pin is not None and identity != self._pin.identity and not new_root:
                return None, None, (f"{self.root}: the config directory was replaced; the last good config keeps "
                                    "serving until the new one holds config files and has been quiet for a moment")
            return identity, walk(self.root), ""
        except OSError as exc:
            reason = "is missing" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc.strerror or exc})"
            return None, None, f"{self.root}: the config directory {reason}; the last good config keeps serving"

    def _gone(self, present: set[str]) -> set[str]:
        """Known files no longer `present` (those under an unreadable directory are hidden, not
        gone)."""
        return {file for file in self._known() - present if not self._under_unreadable(file)}

    def _pinned(self) -> tuple[int, int] | None:
        return None if self._pin is None else self._pin.identity

    def _repin(self, identity: tuple[int, int] | None) -> None:
        """Hold the directory just read, so that its identity stays its own."""
        if self._pin is not None and self._pin.identity == identity:
            return
        try:
            pin = _Pin(self.root)
        except OSError:
            return
        if self._pin is not None:
            self._pin.close()
        self._pin = pin

    def _set_root_problem(self, problem: str) -> None:
        if problem and problem != self._root_problem:
            log.error("%s", problem, extra={"directory": str(self.root)})
        elif self._root_problem and not problem:
            log.info("config directory readable again", extra={"directory": str(self.root)})
        self._root_problem = problem

    def _set_unreadable(self, unreadable: dict[str, str]) -> None:
        for directory in unreadable.keys() - self._unreadable.keys():
            log.error("directory cannot be read (%s); the last good version of its files keeps serving",
                      unreadable[directory], extra={"directory": directory})
        for directory in self._unreadable.keys() - unreadable.keys():
            log.info("directory readable again", extra={"directory": directory})
        self._unreadable = unreadable

    def _under_unreadable(self, file: str) -> bool:
        return any(file.startswith(directory + os.sep) for directory in self._unreadable)

    def _known(self) -> set[str]:
        return self._good.keys() | self._rejected.keys()

    def _forget(self, file: str) -> None:
        self._good.pop(file, None)
        self._rejected.pop(file, None)
        self._stamps.pop(file, None)
        log.info("file removed", extra={"file": file})

    def _load(self, file: str) -> None:
        result = load_file(file, self.namespace)
        kept = self._kept(file, result)
        if kept is not None:
            self._refuse(file, kept.problems, kept.reason)
            return
        problems = tuple(str(p) for p in result.problems) or self._conflicts(file, result.resources)
        if problems:
            self._refuse(file, problems, "file refused, its last good version keeps serving"
                         if file in self._good else "file refused")
            return
        if file in self._rejected:
            log.info("file accepted again", extra={"file": file})
        self._good[file] = result.resources
        self._rejected.pop(file, None)

    def _kept(self, file: str, result: FileResult) -> _Kept | None:
        """An empty or unreadable version of a file that had good content: not an edit to apply
        (a truncated write, a permissions slip), so its last good content keeps serving."""
        if not self._good.get(file):
            return None
        if not result.problems and result.documents == 0:
            return _Kept("file is empty; its last good version keeps serving until it has content again",
                         (f"{file}: file is empty; its last good version keeps serving until it has content again",))
        if any(problem.line == 0 for problem in result.problems):
            problems = tuple(f"{p}; its last good version keeps serving" for p in result.problems)
            return _Kept("file cannot be read; its last good version keeps serving", problems)
        return None

    def _refuse(self, file: str, problems: tuple[str, ...], reason: str) -> None:
        if self._rejected.get(file) != problems:
            for problem in problems:
                log.error("%s: %s", reason, problem, extra={"file": file})
        self._rejected[file] = problems

    def _conflicts(self, file: str, resources: list[Resource]) -> tuple[str, ...]:
        """A file may not redefine an object another accepted file already defines."""
        owners = {r.key: r for other, items in self._good.items() if other != file for r in items}
        return tuple(
            f"{r.where()}: {r.ref()}: defined twice; first definition at {owners[r.key].origin}"
            for r in resources if r.key in owners
        )

    def current(self) -> SourceUpdate:
        resources = tuple(r for file in sorted(self._good) for r in self._good[file])
        rejected = [Rejection(file, self._rejected[file]) for file in sorted(self._rejected)]
        rejected.extend(
            Rejection(directory, (f"{directory}: cannot read directory ({reason}); the last good version of its "
                                  "files keeps serving",))
            for directory, reason in sorted(self._unreadable.items())
        )
        if self._root_problem:
            rejected.append(Rejection(str(self.root), (self._root_problem,)))
        return SourceUpdate(resources, tuple(rejected))

    # --- watching --------------------------------------------------------------------------

    def updates(self) -> AsyncIterator[SourceUpdate]:
        """The current state, then one update per debounced batch of changes that altered it.

        Reading runs on a worker thread, so a large file never stalls the server's event loop
        (its `/ready`, its streams)."""
        return distinct(self._scans())

    async def _scans(self) -> AsyncIterator[SourceUpdate]:
        queue: asyncio.Queue[set[Hashable] | object] = asyncio.Queue()
        watcher = asyncio.create_task(self._watch(queue))
        await asyncio.sleep(0)
        try:
            yield await asyncio.to_thread(self.scan)
            async for batch in debounce(queue, self.debounce_after, self.debounce_max):
                paths = [self._as_given(str(path)) for path in batch if path != NEW_ROOT]
                yield await asyncio.to_thread(self.scan, paths, new_root=NEW_ROOT in batch)
        finally:
            watcher.cancel()

    def _as_given(self, path: str) -> str:
        """A watched (absolute) path in the form files are listed in: under the root as the
        user wrote it, so `--config-dir mesh` reports `mesh/a.yaml`, not an absolute path."""
        try:
            return str(self.root / Path(path).relative_to(self.root.resolve()))
        except (ValueError, OSError):
            return path

    async def _watch(self, queue: asyncio.Queue[set[Hashable] | object]) -> None:
        """Watch the directory the root path leads to; when it leads elsewhere (or nowhere),
        wait for a directory to be there again, let it settle, and watch that one."""
        try:
            settled = False
            while True:
                try:
                    pin = _Pin(self.root)
                except OSError:
                    pin = None
                if pin is not None:
                    if settled:
                        queue.put_nowait({NEW_ROOT})
                    try:
                        await self._watch_directory(pin, queue)
                    finally:
                        pin.close()
                    queue.put_nowait({str(self.root)})
                await _settled_directory(self.root)
                settled = True
        finally:
            queue.put_nowait(END)

    async def _watch_directory(self, pin: _Pin, queue: asyncio.Queue[set[Hashable] | object]) -> None:
        """Forward changes under the root until the root path stops leading to `pin`."""
        from watchfiles import awatch

        stop = asyncio.Event()
        guard = asyncio.create_task(_until_changed(self.root, pin.identity, stop))
        try:
            async for changes in awatch(self.root, watch_filter=None, step=_WATCH_STEP_MS,
                                        debounce=_WATCH_GROUP_MS, recursive=True, stop_event=stop):
                queue.put_nowait({path for _, path in changes})
        except Exception as exc:  # noqa: BLE001 - part of the tree unreadable, no inotify watch left, ...
            if not stop.is_set():
                log.warning("cannot watch the config directory (%s); looking at it every %.1f s instead", exc, POLL,
                            extra={"directory": str(self.root)})
                await _poll(self.root, pin.identity, stop, queue)
        finally:
            guard.cancel()


async def _until_changed(root: Path, identity: tuple[int, int], stop: asyncio.Event) -> None:
    """Set `stop` once `root` leads to another directory, to none, or to one it cannot list."""
    while _identity(root) == identity and _listable(root):
        await asyncio.sleep(ROOT_POLL)
    stop.set()


async def _poll(root: Path, identity: tuple[int, int], stop: asyncio.Event,
                queue: asyncio.Queue[set[Hashable] | object]) -> None:
    """Look at the files under `root` every `POLL` seconds and report when they change, until
    `stop` is set (the root path leads elsewhere)."""
    last = await asyncio.to_thread(_tree, root)
    while not stop.is_set():
        await asyncio.sleep(POLL)
        tree = await asyncio.to_thread(_tree, root)
        if tree != last:
            last = tree
            queue.put_nowait({str(root)})


async def _settled_directory(root: Path) -> None:
    """The directory `root` leads to, once there is one that can be listed, holds config files,
    and nothing in it has changed for `SETTLE` seconds."""
    loop = asyncio.get_running_loop()
    last: tuple[object, ...] | None = None
    since = loop.time()
    while True:
        await asyncio.sleep(ROOT_POLL)
        identity = _identity(root)
        tree = _tree(root) if identity is not None else None
        state = None if identity is None or tree is None else (identity, tree)
        if state != last:
            last, since = state, loop.time()
        elif identity is not None and tree and loop.time() - since >= SETTLE:
            return


class _Pin:
    """An open descriptor of a directory. While one is held the directory's inode cannot be
    freed and reused, so comparing (device, inode) tells reliably whether a path still leads
    to it: `rm -rf DIR; mkdir DIR` often gets the old inode number back otherwise."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        info = os.fstat(self.fd)
        self.identity = (info.st_dev, info.st_ino)

    def close(self) -> None:
        os.close(self.fd)


def _identity(root: Path) -> tuple[int, int] | None:
    """Which directory `root` leads to now (device and inode), None if none."""
    try:
        info = os.stat(root)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if os.path.isdir(root) else None


def _listable(root: Path) -> bool:
    try:
        with os.scandir(root):
            return True
    except OSError:
        return False


def _tree(root: Path) -> tuple[tuple[str, Stamp | None], ...] | None:
    """What the files under `root` are right now (None if it cannot be listed), to tell when a
    new directory stops changing."""
    try:
        listing = walk(root)
    except OSError:
        return None
    return tuple((file, _stamp(file)) for file in listing.files)


def _stamp(file: str) -> Stamp | None:
    """What a path leads to now (through symlinks): a changed stamp means changed content."""
    try:
        info = os.stat(file)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
