"""`proxy-status --wait`: poll sync status until every selected proxy is SYNCED, or time out.

Made for CI: apply config, then wait until the proxies hold it before running tests. A proxy
counts as synced when every type it subscribed to is SYNCED (acknowledged in the latest version
sent). No proxy at all is not success: right after a deployment the proxies may not be
connected yet, so waiting goes on until one is. A control plane that cannot be reached for a
moment (restarting, a port-forward being set up) is asked again; only if it never answered is
its error raised at the deadline. The clock and the sleep are parameters, so the loop can be
tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshctl.errors import MeshctlError
from meshctl.status.syncz import ProxySync

__all__ = ["MIN_QUESTION_TIMEOUT", "POLL_INTERVAL", "WaitResult", "wait_for_sync"]

POLL_INTERVAL = 0.5
MIN_QUESTION_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class WaitResult:
    """The last poll: the selected proxies, those not synced, and how long the wait took."""

    synced: bool
    proxies: Sequence[ProxySync]
    laggards: Sequence[ProxySync]
    waited: float


def wait_for_sync(
    poll: Callable[[float], Sequence[ProxySync]],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = POLL_INTERVAL,
) -> WaitResult:
    """Call `poll(question_timeout)` until every proxy it returns is synced or `timeout` passes.

    `poll` asks the control planes and returns the selected proxies; it gets the time left
    (at least MIN_QUESTION_TIMEOUT) as the deadline for its own questions.
    """
    start = clock()
    deadline = start + timeout
    proxies: Sequence[ProxySync] = ()
    answered = False
    last_error: MeshctlError | None = None
    while True:
        try:
            proxies = poll(max(deadline - clock(), MIN_QUESTION_TIMEOUT))
            answered = True
        except MeshctlError as exc:
            last_error = exc
        laggards = [proxy for proxy in proxies if not proxy.synced]
        now = clock()
        if answered and proxies and not laggards:
            return WaitResult(True, proxies, (), now - start)
        if now >= deadline:
            if not answered and last_error is not None:
                raise last_error
            return WaitResult(False, proxies, laggards, now - start)
        sleep(min(interval, deadline - now))
