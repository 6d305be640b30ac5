"""An immutable sequence that a few replacements copy in a time that does not grow with it.

An edit of one VirtualService in a mesh of ten thousand replaces one item of sequences that
hold all of them: the VirtualServices an egress listener imports (model.scope), the virtual
hosts of a route configuration (generate.routebytes). As tuples, each edit would copy them
whole, and free the copies of the edit before. Held in blocks of BLOCK, a replacement copies
the blocks it touches and the tuple of blocks, and shares the rest with the sequence it came
from: a ten-thousand-item sequence is 79 blocks.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, overload

__all__ = ["BLOCK", "Blocks"]

BLOCK = 128
"""Items per block (the last block may hold fewer; every other holds exactly BLOCK, so where
an item sits depends on its position alone, however the sequence was made)."""

T = TypeVar("T")
B = TypeVar("B", bound="Blocks[Any]")


class Blocks(Sequence[T]):
    """An immutable sequence in blocks of BLOCK. Subclasses keep something per block (a
    digest, say) by overriding `_derive`, which both ways of making one call."""

    __slots__ = ("_blocks", "_count")

    def __init__(self, items: Iterable[T] = ()) -> None:
        every = tuple(items)
        self._blocks = tuple(every[start:start + BLOCK] for start in range(0, len(every), BLOCK))
        self._count = len(every)
        self._derive(None, range(len(self._blocks)))

    def _derive(self: B, before: B | None, changed: Iterable[int]) -> None:
        """Update what is kept per block: for the blocks in `changed`, made anew; the others
        are those of `before` (None: a sequence made whole, every block changed)."""

    def replaced(self: B, items: Mapping[int, T]) -> B:
        """This sequence with the items at the given positions replaced."""
        if not items:
            return self
        blocks = list(self._blocks)
        by_block: dict[int, dict[int, T]] = {}
        for position, item in items.items():
            if not 0 <= position < self._count:
                raise IndexError(f"no item at position {position} of {self._count}")
            by_block.setdefault(position // BLOCK, {})[position % BLOCK] = item
        for index, changes in by_block.items():
            members = list(blocks[index])
            for offset, item in changes.items():
                members[offset] = item
            blocks[index] = tuple(members)
        out = type(self).__new__(type(self))
        out._blocks, out._count = tuple(blocks), self._count
        out._derive(self, by_block)
        return out

    def position(self, item: T, key: Callable[[T], Any]) -> int | None:
        """Where `item` itself sits (None: it does not), found by bisection when the sequence
        is sorted by `key`, else by a scan: a wrong idea of the order costs time, not the
        answer."""
        probe = key(item)
        blocks = self._blocks
        index = bisect.bisect_right(blocks, probe, key=lambda block: key(block[0])) - 1
        if index >= 0:
            block = blocks[index]
            offset = bisect.bisect_left(block, probe, key=key)
            if offset < len(block) and block[offset] is item:
                return index * BLOCK + offset
        for index, block in enumerate(blocks):
            if item in block:  # equal or the very item (a scan in C), then the very one
                for offset, member in enumerate(block):
                    if member is item:
                        return index * BLOCK + offset
        return None

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):
            return tuple(self)[index]
        position = index + self._count if index < 0 else index
        if not 0 <= position < self._count:
            raise IndexError(f"no item at position {index} of {self._count}")
        return self._blocks[position // BLOCK][position % BLOCK]

    def __iter__(self) -> Iterator[T]:
        for block in self._blocks:
            yield from block

    def blocks(self) -> tuple[tuple[T, ...], ...]:
        """The blocks themselves (shared: a block unchanged by `replaced` is the same tuple)."""
        return self._blocks
