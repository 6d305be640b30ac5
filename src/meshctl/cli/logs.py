"""Log lines of the long-running commands (serve, agent): logfmt or JSON, one event per line.

The library logs events with their fields attached (`extra=`); the command decides the format
and the level, here, once for all of them.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from meshctl.errors import UsageError


_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class _Formatter(logging.Formatter):
    """One line per event, with the fields the library attached (`extra=`) as key=value pairs
    (logfmt) or as one JSON object, so logs can be grepped and parsed alike."""

    def __init__(self, style: str) -> None:
        super().__init__()
        self.json = style == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update((k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS)
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        if self.json:
            import json

            return json.dumps(fields, default=str)
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _PeerGone(logging.Filter):
    """gRPC's own report of a stream whose client went away before the server sent its status.

    grpc.aio logs it at error level with a traceback (`ExecuteBatchError` in
    `_finish_handler_with_stream_responses`) when a connection is reset while a stream ends,
    which a control plane sees whenever a proxy dies: nothing failed on serve's side. It
    becomes one debug line without the traceback, shown only with `--log-level debug`."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if type(error).__name__ != "ExecuteBatchError":
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args = "stream ended after its client had gone", None
        record.exc_info = record.exc_text = None
        return logging.getLogger("meshctl").isEnabledFor(logging.DEBUG)


def configure_logging(level_name: str, style: str) -> None:
    """Send meshctl's events at `level_name` and above (others' warnings) to stderr as `style`
    (logfmt or json); UsageError for a level or format that does not exist."""
    if style not in ("logfmt", "json"):
        raise UsageError(f"--log-format must be logfmt or json, not {style!r}")
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise UsageError(f"--log-level must be debug, info, warning or error, not {level_name!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(style))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("meshctl").setLevel(level)
    grpc_core = logging.getLogger("grpc._cython.cygrpc")
    if not any(isinstance(known, _PeerGone) for known in grpc_core.filters):
        grpc_core.addFilter(_PeerGone())
