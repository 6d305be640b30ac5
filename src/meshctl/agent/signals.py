"""The signals the agent acts on, held from before Envoy starts until the agent can act on them.

Envoy is started before the agent's event loop exists (meshctl.agent.launch), and the agent's
handlers (drain and stop Envoy on SIGTERM or SIGINT, pass SIGHUP, SIGUSR1 and SIGUSR2 on) are
installed only once the loop runs, some 100 ms later. A signal arriving in between would
otherwise take its default action: the agent would die (or, for SIGINT, unwind) and leave its
Envoy running, orphaned, in a session of its own. So the agent blocks them (`hold`) before
Envoy starts; the kernel keeps any that arrive pending; Envoy's process starts with them
unblocked (`unheld_mask`, `release` in the forked child); and once the agent's handlers are in
place it unblocks them (`release`), and a pending one is handled as if it had just arrived.

Threads started meanwhile (asyncio's, grpc's) keep them blocked for good, which is what is
wanted: the kernel then delivers them to the main thread, where Python runs handlers.
"""

from __future__ import annotations

import signal

__all__ = ["FORWARDED", "HANDLED", "STOPPING", "hold", "release", "unheld_mask"]

STOPPING = (signal.SIGTERM, signal.SIGINT)
"""Drain Envoy, stop it, exit with its status."""
FORWARDED = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
"""Passed on to Envoy (SIGUSR1: reopen its logs)."""
HANDLED = STOPPING + FORWARDED


def hold() -> None:
    """Block the handled signals in this thread (and in every thread and child it starts)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)


def release() -> None:
    """Unblock them: any that arrived while held is delivered now."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)


def unheld_mask() -> set[int]:
    """This thread's signal mask without the handled signals: the mask a child that execs
    (Envoy, which handles them itself) starts with."""
    return {int(signum) for signum in signal.pthread_sigmask(signal.SIG_BLOCK, ())} - set(HANDLED)
