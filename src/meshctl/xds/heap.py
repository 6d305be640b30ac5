"""Garbage collection on the control plane's rhythm, not in the middle of a push.

A full collection walks every object the collector tracks. serve holds a few hundred thousand
(module and protobuf descriptors, the translator's caches, every stream's state), and walking
them costs 100-300 ms on a 2-core machine. CPython starts one whenever enough objects have
survived younger collections, which is exactly what a push to 1,000 proxies makes: measured in
`benchmarks/serve_fanout.py`, a full collection fell inside most pushes and set their slowest ACK.

So serve collects when it is quiet instead: once nothing was accepted, connected or pushed for
QUIET seconds, it collects what was made since the last quiet spell and freezes what survives
(`gc.freeze`: later collections skip it), so the collections a push triggers walk only what the
push made. The first quiet spell freezes without collecting: a full walk then would stall the
event loop (`/ready` among the rest) for as long as the collection it replaces. Frozen objects
are still freed by reference counting; only cyclic garbage among them (a stream that ended, say)
waits, for the first quiet spell FULL_EVERY seconds after the last full walk: that one unfreezes
everything and collects it all (counting the frozen objects to decide would walk them all too).

While busy, CPython's own collections are held off altogether (`gc.disable`) until the quiet
spell's collection, for at most HOLD_AT_MOST seconds in a row. Even with the heap frozen, the
young collections a push to 1,000 proxies triggers cost 30-40 µs of its CPU per proxy
(serve_fanout, measured with gc.callbacks): every object a stream keeps is walked in the
youngest generation, again in the middle one, and then once more by the quiet spell's
collection, which alone is enough. Cycles made meanwhile wait for that collection.
The quiet spell then hands the memory freed since back to the system (glibc's `malloc_trim`):
the C allocator keeps every page a push freed below one still in use, so serve's RSS would stay
at its busiest. Measured with serve_fanout.py (1,000 proxies): 0.5-4 ms a quiet spell, and
10-13 MB (10-13 KB a proxy) less RSS after three rounds of pushes.
Driven by hand, without an event loop (the benchmarks and tests that call the cache directly),
nothing is scheduled and nothing held.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import time
from collections.abc import Callable

__all__ = ["FULL_EVERY", "HOLD_AT_MOST", "QUIET", "Heap"]

QUIET = 0.25
"""Seconds without activity before collecting: longer than the gaps within a push (an Envoy
ACKs in milliseconds), short enough to fit between two changes a second apart."""

FULL_EVERY = 120.0
"""Seconds between two collections of everything, frozen objects included: the one pause of
100-300 ms left, in a quiet spell, where CPython alone makes one every few changes, mid-push."""

HOLD_AT_MOST = 2.0
"""Seconds CPython's collections stay held in one busy spell: a spell longer than that (changes
in a row with no quiet spell between) gets them back until its end, so garbage cycles made by
ceaseless work are still freed."""


class Heap:
    """When serve last did something, and the collection scheduled for when it stops."""

    def __init__(self, quiet: float = QUIET, full_every: float = FULL_EVERY, hold_at_most: float = HOLD_AT_MOST) -> None:
        self.quiet = quiet
        self.full_every = full_every
        self.hold_at_most = hold_at_most
        self.last_active = 0.0
        self.collections = 0
        self._timer: asyncio.TimerHandle | None = None
        self._full_at: float | None = None
        self._closed = False
        self._held_since: float | None = None

    def active(self) -> None:
        """Something happened (a config accepted, a stream connected, a response written)."""
        self.last_active = time.monotonic()
        if self._timer is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(self.quiet, self._settle)
        if gc.isenabled():
            gc.disable()
            self._held_since = self.last_active

    def _settle(self) -> None:
        now = time.monotonic()
        idle = now - self.last_active
        if idle < self.quiet:
            if self._held_since is not None and now - self._held_since >= self.hold_at_most:
                self._release()
            self._timer = asyncio.get_running_loop().call_later(self.quiet - idle, self._settle)
            return
        self._timer = None
        if self._full_at is None:
            self._full_at = now
        else:
            if now - self._full_at >= self.full_every:
                gc.unfreeze()
                self._full_at = now
            gc.collect()
        gc.freeze()
        if _TRIM is not None:
            _TRIM(0)
        self._release()
        self.collections += 1

    def _release(self) -> None:
        """CPython's collections back, if this held them."""
        if self._held_since is not None:
            self._held_since = None
            gc.enable()

    def close(self) -> None:
        """serve stops: no more collections scheduled, and everything collectable again."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._release()
        gc.unfreeze()


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library is another (musl, macOS: their
    allocators give memory back by themselves, or have no such call)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, ValueError):
        return None
    return trim


_TRIM = _malloc_trim()
