"""`meshctl serve`: the embedded control plane (what istiod does for xDS), fed by a directory."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshctl.cli.options import InputNamespaceOption

if TYPE_CHECKING:
    from meshctl.xds.generation import Translate

DEFAULT_TRANSLATOR = "meshctl.generate.translator:translate_resources"
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}

ConfigDirOption = Annotated[str, typer.Option("--config-dir", help="Directory of Istio and Kubernetes YAML, watched for changes.")]
XdsAddressOption = Annotated[str, typer.Option("--xds-address", help="HOST:PORT for ADS and CSDS (gRPC, plaintext).")]
DebugAddressOption = Annotated[str, typer.Option("--debug-address", help="HOST:PORT for /debug/*, /metrics and /ready; empty to disable.")]
AfterOption = Annotated[str, typer.Option("--debounce-after", help="Quiet period after the last change before pushing (0 pushes at once).")]
MaxOption = Annotated[str, typer.Option("--debounce-max", help="Longest a change may wait for the quiet period.")]
TranslatorOption = Annotated[str, typer.Option("--translator", hidden=True, help="MODULE:FUNCTION building the mesh config.")]
LogLevelOption = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
LogFormatOption = Annotated[str, typer.Option("--log-format", help="logfmt (key=value lines) or json.")]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    config_dir: ConfigDirOption,
    xds_address: XdsAddressOption = "127.0.0.1:15010",
    debug_address: DebugAddressOption = "127.0.0.1:15014",
    debounce_after: AfterOption = "100ms",
    debounce_max: MaxOption = "10s",
    namespace: InputNamespaceOption = "default",
    translator: TranslatorOption = DEFAULT_TRANSLATOR,
    log_level: LogLevelOption = "info",
    log_format: LogFormatOption = "logfmt",
) -> int:
    """Serve Envoy config over ADS (SotW and Delta) from a watched directory, like istiod.

    Exit 0 after SIGTERM, 130 after SIGINT, 64 on bad flags, 1 if it cannot start.

    Examples:

    \b
      meshctl serve --config-dir examples/bookinfo
      meshctl serve --config-dir mesh/ --xds-address 0.0.0.0:15010 --log-level debug --log-format json
    """
    import asyncio

    from meshctl.errors import UsageError

    after = _seconds(debounce_after, "--debounce-after")
    ceiling = _seconds(debounce_max, "--debounce-max")
    if log_format not in ("logfmt", "json"):
        raise UsageError(f"--log-format must be logfmt or json, not {log_format!r}")
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise UsageError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    _configure_logging(level, log_format)
    return asyncio.run(_run(config_dir, xds_address, debug_address, after, ceiling, namespace, translator))


async def _run(
    config_dir: str, xds_address: str, debug_address: str, after: float, ceiling: float, namespace: str, translator: str
) -> int:
    import asyncio
    import signal

    from meshctl.cli.output import err
    from meshctl.errors import ExitCode, UsageError
    from meshctl.model.node import ISTIO_NODES
    from meshctl.xds.server import XdsServer

    if not Path(config_dir).is_dir():
        raise UsageError(f"--config-dir {config_dir!r} does not exist or is not a directory")
    server = XdsServer(xds_address, debug_address or None, ISTIO_NODES)
    await server.start()
    debug = f", debug HTTP on {debug_address.rsplit(':', 1)[0]}:{server.debug_port}" if debug_address else ""
    err(f"meshctl serve: xDS (ADS, CSDS) on {xds_address.rsplit(':', 1)[0]}:{server.xds_port}{debug}, config from {config_dir}")
    try:
        translate = _load_translator(translator)
        from meshctl.sources.directory import DirectorySource

        source = DirectorySource(config_dir, debounce_after=after, debounce_max=ceiling, namespace=namespace)
    except BaseException:
        await server.stop()
        raise
    server.feed(source, translate)
    stopped = asyncio.Event()
    received: list[int] = []
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda s=signum: (received.append(s), stopped.set()))
    waiting = asyncio.create_task(stopped.wait())
    feeding = asyncio.create_task(server.wait())
    await asyncio.wait({waiting, feeding}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    await server.stop()
    if feeding.done() and not feeding.cancelled() and feeding.exception() is not None:
        raise feeding.exception()  # type: ignore[misc]
    return ExitCode.INTERRUPTED if received and received[0] == signal.SIGINT else ExitCode.OK


def _seconds(text: str, flag: str) -> float:
    from meshctl.config.values import parse_duration
    from meshctl.errors import UsageError

    nanos = parse_duration(text)
    if nanos is None or nanos < 0:
        raise UsageError(f"{flag}: {text!r} is not a duration like 100ms, 2s or 0")
    return nanos / 1e9


def _load_translator(spec: str) -> Translate:
    """Import the translator only now: it is the heaviest part of the program."""
    import importlib

    from meshctl.errors import MeshctlError, UsageError

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"--translator must be MODULE:FUNCTION, not {spec!r}")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise MeshctlError(f"cannot load the translator {spec}: {exc}") from None


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


def _configure_logging(level: int, style: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(style))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("meshctl").setLevel(level)
