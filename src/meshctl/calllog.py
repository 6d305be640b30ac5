"""Every call meshctl makes to something outside itself, for `--vklog` (istioctl's spelling).

When a command is slow or fails, the first question is which call: to the Kubernetes API (and
which URL), through a port-forward or an exec, to a control plane over ADS, or to an Envoy's
admin endpoint. Each of those is wrapped in `timed`, which logs one line at debug level to the
`meshctl.calls` logger: what was called, the outcome, the time it took. Lines name methods,
URLs, pods and type URLs, never credentials (tokens travel in headers, which are not logged).
Nothing is formatted unless the logger is enabled, which only the CLI does.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

__all__ = ["log", "timed"]

log = logging.getLogger("meshctl.calls")


@contextlib.contextmanager
def timed(what: Callable[[], str]) -> Iterator[Callable[[str], None]]:
    """Log `what()` with the outcome the block reports (through the function it is given) or
    the exception that ended it, and the elapsed time."""
    if not log.isEnabledFor(logging.DEBUG):
        yield _ignore
        return
    outcome: list[str] = []
    started = time.monotonic()
    try:
        yield outcome.append
    except BaseException as exc:
        log.debug("%s -> failed: %s (%s)", what(), str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                  _elapsed(started))
        raise
    log.debug("%s -> %s (%s)", what(), outcome[-1] if outcome else "done", _elapsed(started))


def _ignore(outcome: str) -> None:
    """The outcome reporter when nothing is logged."""


def _elapsed(started: float) -> str:
    return f"{(time.monotonic() - started) * 1e3:.0f} ms"
