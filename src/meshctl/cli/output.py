"""Where the CLI writes: data to stdout, progress, notes and warnings to stderr."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


def out(text: str) -> None:
    """Data for the user or the next program in the pipe."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def err(text: str) -> None:
    """Errors, warnings, notes and progress: never mixed into the data on stdout."""
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def warn(text: str) -> None:
    err(f"warning: {text}")


@contextlib.contextmanager
def calls_logged(enabled: bool) -> Iterator[None]:
    """While the block runs (and `enabled`), write the call log (meshctl.calllog) to stderr,
    one `call:` line per call; afterwards the log is off again."""
    if not enabled:
        yield
        return
    import logging

    from meshctl.calllog import log

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("call: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
        log.propagate = True
