"""The `meshctl` command line: thin commands over the library.

Only this package prints. Command modules import nothing heavy at module level (completion runs
the program on every TAB, and `meshctl --help` must start fast): the library, grpc and kubernetes
are imported inside the command functions. This module imports no Typer either: the Typer
application is built in meshctl.cli.application, and `meshctl agent`, whose start is timed in
milliseconds, runs without it when its flags need no help and hold no mistake
(meshctl.cli.agentrun).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

from meshctl.errors import ExitCode, MeshctlError

ONE_SHOT = frozenset({"translate", "validate", "analyze", "explain", "diff"})
"""Commands that read their inputs, answer and exit: they build large trees of objects and
keep them to the end, none in a reference cycle, so Python's cycle collector, which walks every
live object again and again as they pile up, is switched off for them (a tenth of `explain -f`
on a thousand services). Long-running commands (serve, agent) keep it; the agent only once it
runs (STARTING)."""
STARTING = "agent"
"""The command whose start is timed in milliseconds (benchmarks/identity.py): its imports alone
allocate enough to set off some 80 young collections, 8% of their time, for nothing. The
collector is off until the agent runs; then its start-up's objects are frozen and it is back on
(meshctl.agent.runner)."""
COMPLETE_VAR = "_MESHCTL_COMPLETE"  # also meshctl.quickcomplete.COMPLETE_VAR, which must not import Typer
VKLOG_VAR = "MESHCTL_VKLOG"
VKLOG_FLAG = "--vklog"


def __getattr__(name: str) -> Any:
    """`meshctl.cli.app`, the Typer application, built when first asked for (meshctl.cli.application)."""
    if name == "app":
        from meshctl.cli.application import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI, mapping every failure to istioctl's exit codes instead of a traceback."""
    from meshctl.cli.output import calls_logged, err

    if COMPLETE_VAR in os.environ:
        return _complete()
    args = sys.argv[1:] if argv is None else argv
    if not args:
        args = ["--help"]
    if argv is None and args[0] in ONE_SHOT:
        gc.disable()  # the process ends with the command
    elif argv is None and args[0] == STARTING:
        gc.disable()  # until the agent runs
    try:
        args, vklog = _take_vklog(args)
        plain = _plain_agent(args)
        with calls_logged(vklog):
            result = plain() if plain is not None else _run_click(args)
    except MeshctlError as exc:
        err(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return ExitCode.OK
    except SystemExit as exc:
        if isinstance(exc.__context__, BrokenPipeError):
            _silence_stdout()
            return ExitCode.OK
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a bare traceback
        import traceback

        if os.environ.get("MESHCTL_DEBUG"):
            traceback.print_exc()
        err(f"internal error: {type(exc).__name__}: {exc}")
        err("this is a bug in meshctl; run again with MESHCTL_DEBUG=1 for the traceback and report it")
        return ExitCode.ERROR
    return result if isinstance(result, int) else ExitCode.OK


def _plain_agent(args: list[str]) -> Any:
    """`meshctl agent` whose flags its Typer-free reader takes exactly as Click would (a
    sidecar's command line), as a call to make; None for anything else (help, a mistake, any
    other command), which Typer then handles with its own help and errors."""
    if args[:1] != ["agent"]:
        return None
    from meshctl.cli.agentrun import plain_call

    return plain_call(args[1:])


def _run_click(args: list[str]) -> Any:
    """Run `args` through Typer (Click): its usage errors exit 64, its other errors 1."""
    from typer import exceptions as typer_exceptions
    from typer._click import exceptions as click_exceptions

    from meshctl.cli.application import command_for
    from meshctl.cli.output import err

    try:
        return command_for(args).main(args=args, prog_name="meshctl", standalone_mode=False)
    except click_exceptions.UsageError as exc:
        exc.show(file=sys.stderr)
        return ExitCode.USAGE
    except typer_exceptions.Abort:
        err("aborted")
        return ExitCode.INTERRUPTED
    except typer_exceptions.Exit as exc:
        return exc.exit_code
    except click_exceptions.ClickException as exc:
        exc.show(file=sys.stderr)
        return ExitCode.ERROR


def _complete() -> int:
    """Answer a shell's completion request; a TAB never prints an error or a traceback."""
    from typer.main import get_command

    from meshctl.cli import completion
    from meshctl.cli.application import app

    try:
        reply = completion.respond(get_command(app), os.environ[COMPLETE_VAR])
    except Exception:  # noqa: BLE001 - nothing to complete is all the shell can be told
        if os.environ.get("MESHCTL_DEBUG"):
            import traceback

            traceback.print_exc()
        return ExitCode.ERROR
    if reply.text:
        sys.stdout.write(reply.text if reply.text.endswith("\n") else reply.text + "\n")
    return reply.code


def _silence_stdout() -> None:
    """The reader of our stdout went away (`meshctl ... | head`): drop the rest quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _take_vklog(args: list[str]) -> tuple[list[str], bool]:
    """istioctl's `--vklog N` is accepted anywhere on the line: the arguments without it (Click
    would accept it only before the command), and whether it turns the call log on."""
    from meshctl.errors import UsageError

    rest: list[str] = []
    level = os.environ.get(VKLOG_VAR, "")
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        if arg == VKLOG_FLAG or arg.startswith(VKLOG_FLAG + "="):
            if "=" in arg:
                level = arg.split("=", 1)[1]
            elif index + 1 < len(args):
                index += 1
                level = args[index]
            else:
                raise UsageError(f"{VKLOG_FLAG} needs a level, e.g. {VKLOG_FLAG} 1")
        else:
            rest.append(arg)
        index += 1
    if level and not level.isdigit():
        raise UsageError(f"{VKLOG_FLAG}: {level!r} is not a level (0 is off, 1 or more logs every call)")
    return rest, bool(level) and int(level) > 0
