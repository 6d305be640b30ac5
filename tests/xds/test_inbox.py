"""A stream's inbox: events in order, its one task woken by each, never blocked by it."""

from __future__ import annotations

import asyncio
import contextlib

from meshctl.xds.inbox import Inbox


def test_events_come_out_in_the_order_they_were_put_and_wake_the_waiting_task() -> None:
    async def scenario() -> list[object]:
        inbox: Inbox[object] = Inbox()
        inbox.put("first")
        taken = [await inbox.get()]
        waiting = asyncio.create_task(inbox.get())
        await asyncio.sleep(0)
        assert not waiting.done()
        inbox.put("second")
        inbox.put("third")
        taken.append(await asyncio.wait_for(waiting, 1))
        taken.append(await inbox.get())
        return taken

    assert asyncio.run(scenario()) == ["first", "second", "third"]


def test_a_cancelled_wait_loses_nothing_put_afterwards() -> None:
    async def scenario() -> object:
        inbox: Inbox[object] = Inbox()
        waiting = asyncio.create_task(inbox.get())
        await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        inbox.put("after")
        return await asyncio.wait_for(inbox.get(), 1)

    assert asyncio.run(scenario()) == "after"
