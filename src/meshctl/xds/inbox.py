"""One ADS stream's events, in order, for the one task that answers them.

Every stream has its own: requests from its reader, config change notices from the snapshot
cache, the notice to end. asyncio.Queue did the job, but it is made for many consumers, bounded
sizes and task accounting: four deques and an Event per stream (2.5 KB each at rest, a thousand
streams 2.5 MB), and that machinery run on every event, twice per proxy and change (the change
notice, then the ACK). A stream's inbox has one consumer, its task, and producers that never
wait: a deque of what came and the one future its task waits on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Inbox"]

T = TypeVar("T")


class Inbox(Generic[T]):
    """Events in the order they were put, for one task that takes them (`get`)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T) -> None:
        """Add an event, waking the task if it waits for one (never blocks)."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def get(self) -> T:
        """The oldest event, once there is one. One task at a time may wait."""
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:  # cancelled while waiting
                    self._waiter = None
        return self._items.popleft()
