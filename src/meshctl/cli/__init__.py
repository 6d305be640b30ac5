"""The `meshctl` command line: thin commands over the library.

Only this package prints. Command modules import nothing heavy at module level (completion runs
the program on every TAB, and `meshctl --help` must start fast): the library, grpc and kubernetes
are imported inside the command functions.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from meshctl.cli import (
    agent,
    analyze,
    bootstrap,
    completion,
    demo,
    diff,
    explain,
    install,
    iptables,
    kube_inject,
    proxy_config,
    proxy_status,
    serve,
    token,
    translate,
    validate,
)
from meshctl.errors import ExitCode, MeshctlError

COMPLETE_VAR = "_MESHCTL_COMPLETE"  # also meshctl.quickcomplete.COMPLETE_VAR, which must not import Typer
VKLOG_VAR = "MESHCTL_VKLOG"
VKLOG_FLAG = "--vklog"


def _new_app() -> typer.Typer:
    """The `meshctl` group, without its commands."""
    group = typer.Typer(
        name="meshctl",
        help="""Render, serve and inspect the Envoy configuration of an Istio service mesh.

    Examples:

    \b
      meshctl translate -f vs.yaml
      meshctl proxy-status --xds-address 127.0.0.1:15010 --plaintext
      meshctl proxy-config routes deploy/productpage-v1 --wide
    """,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    group.callback()(_options)
    return group


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        from meshctl.cli.output import out

        out(f"meshctl {version('meshctl')}")
        raise typer.Exit()


def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print meshctl's version and exit.")] = False,
    vklog: Annotated[int, typer.Option(
        "--vklog", envvar=VKLOG_VAR, min=0,
        help="1 or more: log every Kubernetes, control-plane and Envoy admin call to stderr (URL, outcome, time; "
             "never credentials). Accepted before or after the command, as in istioctl.")] = 0,
) -> None:
    """Options that come before the command (Typer calls this ahead of every command)."""


COMMANDS = (translate, validate, analyze, serve, bootstrap, agent, token, proxy_config, proxy_status, demo, iptables,
            kube_inject, completion, install, explain, diff)
app = _new_app()
for _module in COMMANDS:
    _module.register(app)

# Commands run as the group with only themselves in it: building every command's Click form
# from its signature costs some 30 ms, and a sidecar's start (`meshctl agent`) is timed in
# milliseconds (benchmarks/identity.py).
ALONE = {"agent": agent}


def _command_for(args: list[str]) -> Any:
    """The Click command that runs `args`."""
    from typer.main import get_command

    alone = ALONE.get(args[0]) if args else None
    if alone is None:
        return get_command(app)
    group = _new_app()
    alone.register(group)
    return get_command(group)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI, mapping every failure to istioctl's exit codes instead of a traceback."""
    from typer import exceptions as typer_exceptions
    from typer._click import exceptions as click_exceptions
    from typer.main import get_command

    from meshctl.cli.output import calls_logged, err

    if COMPLETE_VAR in os.environ:
        return _complete(get_command(app))
    args = sys.argv[1:] if argv is None else argv
    if not args:
        args = ["--help"]
    try:
        args, vklog = _take_vklog(args)
        command = _command_for(args)
        with calls_logged(vklog):
            result = command.main(args=args, prog_name="meshctl", standalone_mode=False)
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


def _complete(command: Any) -> int:
    """Answer a shell's completion request; a TAB never prints an error or a traceback."""
    try:
        reply = completion.respond(command, os.environ[COMPLETE_VAR])
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
