"""Istio's push debounce: wait for a quiet period after the last change, but never longer than
a ceiling after the first one.

Editors, `kubectl apply -f dir` and git checkouts produce bursts of events; translating and
pushing once per burst instead of once per event keeps proxies from being flooded, while the
ceiling keeps a steady trickle of changes from postponing every push forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from typing import cast

__all__ = ["END", "debounce"]

END = object()


async def debounce(
    queue: asyncio.Queue[set[Hashable] | object], after: float, ceiling: float
) -> AsyncIterator[set[Hashable]]:
    """Merge batches from `queue` (ended by `END`) into debounced batches. `after` is the quiet
    period and `ceiling` the maximum delay, in seconds; `after <= 0` passes batches straight on."""
    loop = asyncio.get_running_loop()
    while True:
        first = await queue.get()
        if first is END:
            return
        pending = set(cast("set[Hashable]", first))
        if after > 0:
            deadline = loop.time() + ceiling
            while True:
                wait = min(after, deadline - loop.time())
                if wait <= 0:
                    break
                try:
                    more = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    break
                if more is END:
                    yield pending
                    return
                pending |= cast("set[Hashable]", more)
        yield pending
