"""Reuse of earlier generations' output when its inputs did not change.

Generation stays a pure function of (snapshot, proxy). A GenerationCache remembers pieces of
that output (a service's clusters, an endpoint assignment, a VirtualService's routes on a port)
under keys made of the *content* of their inputs: resource revisions and the derived facts the
piece depends on. A new snapshot built from mostly unchanged files therefore regenerates only
what depends on the change, and proxies with the same inputs share both the messages and their
serialized bytes.

Entries not used during the last two snapshot versions are dropped, so the cache follows the
mesh instead of growing with its history.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from google.protobuf.message import Message

from meshctl.generate.routebytes import AssembledRoutes
from meshctl.memokeys import Same
from meshctl.resources import Packed

__all__ = ["GenerationCache"]

T = TypeVar("T")
M = TypeVar("M", bound=Message)


class GenerationCache:
    def __init__(self) -> None:
        self._version = ""
        self._current: dict[Hashable, Any] = {}
        self._previous: dict[Hashable, Any] = {}
        self._packs: dict[int, tuple[Message | AssembledRoutes, Packed]] = {}
        self._previous_packs: dict[int, tuple[Message | AssembledRoutes, Packed]] = {}
        self.hits = 0
        self.misses = 0

    def begin(self, version: str) -> None:
        """Start using the cache for a snapshot version; the generation before last is forgotten."""
        if version == self._version:
            return
        self._version = version
        self._previous, self._current = self._current, {}
        self._previous_packs, self._packs = self._packs, {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for `key`, computing and remembering it when absent."""
        found = self._current.get(key, _MISSING)
        if found is _MISSING:
            found = self._previous.get(key, _MISSING)
            if found is _MISSING:
                self.misses += 1
                found = compute()
            else:
                self.hits += 1
            self._current[key] = found
        else:
            self.hits += 1
        return found

    def latest(self, key: Hashable) -> Any:
        """What was last `remember`ed under `key` (None: nothing), for a piece updated from its
        previous value rather than recomputed (see generate.routes)."""
        found = self._current.get(key, _MISSING)
        if found is _MISSING:
            found = self._previous.get(key)
        return found

    def remember(self, key: Hashable, value: object) -> None:
        self._current[key] = value

    def restore(self, entries: Iterable[tuple[Hashable, Any]]) -> None:
        """Entries (key, value) read earlier (`latest`), back into the cache where it has
        forgotten them: a piece updated from its previous value uses few of its inputs'
        entries, and when it must be built whole again the others are still good (keys are
        made of content)."""
        current = self._current
        for key, value in entries:
            if key not in current:
                current[key] = value

    def same_list(self, items: list[T]) -> list[T]:
        """`items`, or an earlier list holding the very same objects in the same order: a piece
        recomputed from cached parts (the clusters of a view after an endpoint moved) keeps its
        identity when none of them changed, and with it every mapping packed from it."""
        return self.get(("same-list", *map(id, items)), lambda: items)

    def same_content(self, items: list[M]) -> list[M]:
        """`items`, or an earlier list of messages that serialize to the very same bytes: a
        proxy's own side is built per proxy (its key holds its IP, its name...), but the
        proxies of one deployment, or every client with no port of its own, mostly get equal
        bytes, and then share one list, its messages and their packed bytes, rather than hold a
        copy each (a sidecar's virtualInbound listener is 5 KB serialized, more as a message).
        Keyed by the bytes themselves, so that only equal content is ever shared."""
        return self.get(("same-content", *((type(m), m.SerializeToString(deterministic=True)) for m in items)),
                        lambda: items)

    def pack(self, name: str, message: Message | AssembledRoutes) -> Packed:
        """A message's Packed form, serialized once per message object while it stays cached
        (a route configuration assembled from serialized virtual hosts packs itself)."""
        entry = self._packs.get(id(message))
        if entry is None or entry[0] is not message:
            entry = self._previous_packs.get(id(message))
            if entry is None or entry[0] is not message:
                entry = (message, message.packed() if isinstance(message, AssembledRoutes) else Packed.of(name, message))
            self._packs[id(message)] = entry
        return entry[1]


    def pack_segments(self, segments: tuple[list[Any], ...], name_of: Callable[[Any], str]) -> dict[str, Packed]:
        """Packed forms by name of lists taken one after the other (the first of duplicate names
        kept), built once per combination of list objects: proxies with the same view and the
        same own side receive the very same mapping, and a proxy none of whose pieces changed
        receives the mapping it was given before, which the server recognises as unchanged
        without comparing what it holds."""

        parts = [self.pack_list(segment, name_of) for segment in segments]
        if len(parts) == 1:
            return parts[0]

        def merged() -> dict[str, Packed]:
            # The first part copied whole (in C): it is the view's shared hundreds, the rest a
            # proxy's own few, merged once per proxy.
            out = dict(parts[0])
            for part in parts[1:]:
                for name, item in part.items():
                    out.setdefault(name, item)
            return out

        return self.get(("packed", *map(Same, parts)), merged)

    def pack_list(self, items: list[Any], name_of: Callable[[Any], str]) -> dict[str, Packed]:
        """Packed forms by name of one list (first of duplicate names kept), built once per list
        object (proxies with the same view receive the very same list from `get`), and the
        earlier mapping itself when every resource in it is as before: a piece rebuilt because
        one of its inputs changed (the routes of a view after a VirtualService edit elsewhere)
        but equal in content keeps its identity."""

        def packed() -> dict[str, Packed]:
            out: dict[str, Packed] = {}
            for item in items:
                name = name_of(item)
                if name not in out:
                    out[name] = self.pack(name, item)
            return self.get(("packed-content", *((name, p.version) for name, p in out.items())), lambda: out)

        return self.get(("packed-list", Same(items)), packed)


_MISSING = object()
