"""Go-style duration flags (`100ms`, `2s`, `24h`), read the same way by every command.

Standard library and meshctl.config.values only: `meshctl agent` reads its flags before Typer
is imported (meshctl.cli.agentrun).
"""

from __future__ import annotations


def duration_flag(text: str, flag: str, *, minimum: float = 0.0) -> float:
    """Seconds of a Go-style duration flag (`100ms`, `2s`, `24h`); UsageError naming `flag`
    for anything else or anything shorter than `minimum`."""
    from meshctl.config.values import parse_duration
    from meshctl.errors import UsageError

    nanos = parse_duration(text)
    if nanos is None or nanos < 0:
        raise UsageError(f"{flag}: {text!r} is not a duration like 100ms, 2s or 24h")
    if nanos / 1e9 < minimum:
        raise UsageError(f"{flag}: {text!r} is shorter than {minimum:g}s")
    return nanos / 1e9
