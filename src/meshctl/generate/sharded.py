"""A mapping updated by copy in a time that does not grow with it.

A piece of generated output updated after an edit (a route configuration's table of hosts,
generate.routes) keeps, besides what it sends, a mapping over everything it was built from;
the edit changes a few of its entries. Copying a dict of ten thousand entries for that would
cost more than the edit itself, and modifying it in place would change the table it belongs
to, which the cache still holds for the version before. Here the entries are spread over
about √n shards by hash: an update copies the shards it touches and the tuple of shards,
and shares the rest with the mapping it came from.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

__all__ = ["ShardedMap"]

K = TypeVar("K")
V = TypeVar("V")


class ShardedMap(Generic[K, V]):
    """An immutable mapping whose `updated` copies O(√n) entries, not n. Iteration follows
    the shards, not insertion: for mappings whose order means nothing."""

    __slots__ = ("_shards",)

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        items = items or {}
        shards: tuple[dict[K, V], ...] = tuple({} for _ in range(max(8, math.isqrt(len(items)))))
        for key, value in items.items():
            shards[hash(key) % len(shards)][key] = value
        self._shards = shards

    def get(self, key: K) -> V | None:
        return self._shards[hash(key) % len(self._shards)].get(key)

    def updated(self, changes: Mapping[K, V]) -> ShardedMap[K, V]:
        """This mapping with `changes` set. It keeps as many shards as it had: made for
        mappings whose keys stay (the sources of a table updated in place)."""
        if not changes:
            return self
        shards = list(self._shards)
        copied: set[int] = set()
        for key, value in changes.items():
            index = hash(key) % len(shards)
            if index not in copied:
                shards[index] = dict(shards[index])
                copied.add(index)
            shards[index][key] = value
        out: ShardedMap[K, V] = ShardedMap.__new__(ShardedMap)
        out._shards = tuple(shards)
        return out

    def values(self) -> Iterator[V]:
        for shard in self._shards:
            yield from shard.values()
