"""`proxy-config log --level`: istioctl's level syntax turned into Envoy `/logging` requests."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from meshctl.errors import UsageError

if TYPE_CHECKING:
    from meshctl.inspect.acquire import DumpSource

__all__ = ["ALL_LOGGERS", "DEFAULT_LEVEL", "requested_levels", "set_levels"]

ALL_LOGGERS = "level"
DEFAULT_LEVEL = "warning"
_LEVELS = {
    "trace": "trace",
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "critical": "critical",
    "off": "off",
}
_SEPARATOR = re.compile("[:=]")


def set_levels(source: DumpSource, spec: str, reset: bool) -> str:
    """Apply `--level SPEC` (or `--reset`) to one Envoy and return its logger listing after.

    With neither, the levels are only listed. A named logger is checked against Envoy's own
    list first, so a typo is a usage error before anything changes.
    """
    response = loggers = source.post("logging").decode()
    for logger, value in requested_levels(spec, reset, loggers):
        response = source.post(f"logging?{logger}={value}").decode()
    return response


def requested_levels(spec: str, reset: bool, loggers: str) -> list[tuple[str, str]]:
    """The `(logger, level)` pairs to POST, the all-loggers `level` pair first.

    `spec` is `LEVEL` (every logger) or `LOGGER:LEVEL,...` (also `LOGGER=LEVEL`, and an
    `ns::` prefix is ignored, as in istioctl). `loggers` is Envoy's `/logging` listing; a
    named logger must appear in it. `reset` sets every logger back to warning.
    """
    if reset:
        return [(ALL_LOGGERS, DEFAULT_LEVEL)]
    wanted: dict[str, str] = {}
    for item in spec.split(",") if spec else []:
        if ":" not in item and "=" not in item:
            wanted = {ALL_LOGGERS: _level(item)}
            continue
        pair = _SEPARATOR.split(item.split("::")[-1], maxsplit=1)
        logger, value = pair[0], pair[1] if len(pair) > 1 else ""
        if logger not in loggers and logger != ALL_LOGGERS:
            raise UsageError(f"unrecognized logger name: {logger}")
        wanted[logger] = _level(value)
    return sorted(wanted.items(), key=lambda pair: pair[0] != ALL_LOGGERS)


def _level(name: str) -> str:
    if name not in _LEVELS:
        raise UsageError(f"unrecognized logging level: {name}")
    return _LEVELS[name]
