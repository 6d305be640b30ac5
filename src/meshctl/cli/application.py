"""The `meshctl` Typer application: the group, its root options and every command.

Importing it imports Typer and every command module (only Typer at their module level): some
45 ms, which `meshctl agent` does without (meshctl.cli.agentrun) when its flags are plain.
"""

from __future__ import annotations

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
from meshctl.cli import VKLOG_VAR


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


def command_for(args: list[str]) -> Any:
    """The Click command that runs `args`."""
    from typer.main import get_command

    alone = ALONE.get(args[0]) if args else None
    if alone is None:
        return get_command(app)
    group = _new_app()
    alone.register(group)
    return get_command(group)
