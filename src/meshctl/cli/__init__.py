"""The `meshctl` command line: thin commands over the library.

Only this package prints. Command modules import nothing heavy at module level (completion runs
the program on every TAB, and `meshctl --help` must start fast): the library, grpc and kubernetes
are imported inside the command functions.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from meshctl.cli import analyze, bootstrap, demo, iptables, proxy_config, proxy_status, serve, translate, validate
from meshctl.errors import ExitCode, MeshctlError

COMPLETE_VAR = "_MESHCTL_COMPLETE"

app = typer.Typer(
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


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        from meshctl.cli.output import out

        out(f"meshctl {version('meshctl')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print meshctl's version and exit.")] = False,
) -> None:
    """Options that come before the command (Typer calls this ahead of every command)."""


translate.register(app)
validate.register(app)
analyze.register(app)
serve.register(app)
bootstrap.register(app)
proxy_config.register(app)
proxy_status.register(app)
demo.register(app)
iptables.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI, mapping every failure to istioctl's exit codes instead of a traceback."""
    from typer import exceptions as typer_exceptions
    from typer._click import exceptions as click_exceptions
    from typer.main import get_command

    from meshctl.cli.output import err

    command = get_command(app)
    if COMPLETE_VAR in os.environ:
        from typer._completion_classes import completion_init

        completion_init()
    args = sys.argv[1:] if argv is None else argv
    if not args:
        args = ["--help"]
    try:
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


def _silence_stdout() -> None:
    """The reader of our stdout went away (`meshctl ... | head`): drop the rest quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
