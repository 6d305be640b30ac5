"""Python's cyclic garbage collector held off while meshctl builds large trees of objects.

Reading input (YAML nodes, marks, dicts, typed views) and translating it (protobuf messages)
allocate hundreds of thousands of objects, keep most of them or free them by reference counting,
and make no cycles worth collecting. Every collection those allocations trigger walks every
object still alive for nothing: a fifth of the time reading a large file, an eighth of a cold
generation of 1,000 services (sampled). The collector runs again afterwards, over what is left.
When to collect in a long-running serve is xds/heap.py's business; this only pauses it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off for the block, then as it was found (nesting, and callers that
    switched it off themselves, are left alone)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
