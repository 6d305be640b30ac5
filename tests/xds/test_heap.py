"""Collections on serve's rhythm (heap.py): after a quiet spell, never in the middle of activity,
and garbage among frozen objects still reclaimed by the periodic full collection."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from pathlib import Path

import pytest

from meshctl.xds.heap import Heap


class _Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_quiet_spell_collects_and_freezes_and_activity_postpones_it() -> None:
    async def scenario() -> tuple[int, int, int]:
        heap = Heap(quiet=0.3, full_every=3600)
        heap.active()
        for _ in range(60):  # busy for 0.6 s: longer than `quiet`, but never quiet that long
            await asyncio.sleep(0.01)
            heap.active()
        busy = heap.collections
        await asyncio.sleep(0.8)
        frozen = gc.get_freeze_count()
        settled = heap.collections
        heap.close()
        return busy, settled, frozen

    try:
        busy, settled, frozen = asyncio.run(scenario())
    finally:
        gc.unfreeze()
    assert busy == 0 and settled == 1
    assert frozen > 0 and gc.get_freeze_count() == 0  # close() gives everything back to the collector


def test_after_close_activity_schedules_nothing() -> None:
    async def scenario() -> int:
        heap = Heap(quiet=0.01)
        heap.close()
        heap.active()  # a last response written while serve stops
        await asyncio.sleep(0.1)
        return heap.collections

    assert asyncio.run(scenario()) == 0 and gc.get_freeze_count() == 0


def test_cycles_among_frozen_objects_are_freed_by_the_next_full_collection() -> None:
    async def scenario() -> tuple[bool, bool]:
        heap = Heap(quiet=0.01, full_every=0.5)
        heap.active()
        await asyncio.sleep(0.2)  # the first quiet spell: freeze, without walking everything
        node = _Node()
        ref = weakref.ref(node)
        heap.active()
        await asyncio.sleep(0.2)  # another: `node`, alive, is frozen with the rest
        del node
        gc.collect()
        kept = ref() is not None  # frozen: the cyclic collector skips it
        await asyncio.sleep(0.5)
        heap.active()
        await asyncio.sleep(0.2)  # FULL_EVERY elapsed: unfreeze and collect everything
        heap.close()
        return kept, ref() is None

    try:
        kept, freed = asyncio.run(scenario())
    finally:
        gc.unfreeze()
    assert kept and freed


def test_without_an_event_loop_nothing_is_scheduled() -> None:
    heap = Heap(quiet=0.0)
    heap.active()  # a benchmark or test driving the cache by hand
    assert heap.collections == 0 and gc.get_freeze_count() == 0
    heap.close()


def test_activity_holds_cpythons_collections_until_the_quiet_spell() -> None:
    async def scenario() -> tuple[bool, bool, int, bool]:
        heap = Heap(quiet=0.1, full_every=3600, hold_at_most=60)
        heap.active()
        await asyncio.sleep(0.2)  # the first quiet spell freezes without collecting
        heap.active()
        node = _Node()
        ref = weakref.ref(node)
        del node
        for _ in range(50):  # allocations enough for many young collections, none made
            [[] for _ in range(1000)]
            await asyncio.sleep(0)
        held, kept = not gc.isenabled(), ref() is not None
        await asyncio.sleep(0.3)
        settled = heap.collections
        heap.close()
        return held, kept, settled, gc.isenabled() and ref() is None

    try:
        held, kept, settled, released = asyncio.run(scenario())
    finally:
        gc.enable()
        gc.unfreeze()
    assert held and kept  # busy: the cycle waits for the quiet spell
    assert settled == 2 and released  # quiet: collected, and CPython's collections are back


def test_ceaseless_activity_gets_cpythons_collections_back() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        heap = Heap(quiet=0.1, full_every=3600, hold_at_most=0.3)
        heap.active()
        held = not gc.isenabled()
        for _ in range(60):  # busy for 0.6 s, never quiet for 0.1 s
            await asyncio.sleep(0.01)
            heap.active()
        released = gc.isenabled()
        heap.close()
        return held, released, heap.collections

    try:
        held, released, collections = asyncio.run(scenario())
    finally:
        gc.enable()
        gc.unfreeze()
    assert held and released and collections == 0


def test_close_gives_cpythons_collections_back() -> None:
    async def scenario() -> tuple[bool, bool]:
        heap = Heap(quiet=10)
        heap.active()
        held = not gc.isenabled()
        heap.close()
        return held, gc.isenabled()

    try:
        assert asyncio.run(scenario()) == (True, True)
    finally:
        gc.enable()


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not os.confstr("CS_GNU_LIBC_VERSION"), reason="malloc_trim is glibc's")
def test_a_quiet_spell_gives_freed_heap_back_to_the_system() -> None:
    """Memory a push freed stays in the C allocator, and in serve's RSS, while anything
    allocated after it is alive (only the top of the heap goes back by itself): the quiet spell
    hands it back."""

    async def scenario() -> tuple[int, int, int]:
        heap = Heap(quiet=0.01, full_every=3600)
        chunks = [bytearray(1000) for _ in range(40_000)]  # 40 MB from the C allocator (pymalloc: 512 bytes at most)
        pins = chunks[::100]  # one left alive every 100 KB: no run of free memory reaches the top of the heap
        held = _rss_kb()
        del chunks
        freed = _rss_kb()
        heap.active()
        await asyncio.sleep(0.2)
        heap.close()
        assert len(pins) == 400
        return held, freed, _rss_kb()

    try:
        held, freed, settled = asyncio.run(scenario())
    finally:
        gc.unfreeze()
    assert held - freed < 10_000, "the allocator gave the freed chunks back by itself: nothing to test"
    assert freed - settled > 30_000
