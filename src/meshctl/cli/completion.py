"""`meshctl completion bash|zsh|fish`, and the command tree a TAB is answered from.

The scripts are Typer's shims: each TAB runs `meshctl` with `_MESHCTL_COMPLETE=complete_<shell>`.
That run is answered by `meshctl.quickcomplete` from the command tree exported here (as JSON,
cached), so that a TAB costs neither Typer nor the Kubernetes client. Which arguments complete
from outside is declared here, by parameter name, for the commands that read a cluster or a
control plane: targets (pods, `deploy/` Deployments, or a plaintext control plane's proxy IDs),
namespaces and kubeconfig contexts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from meshctl.quickcomplete import Reply

# Commands whose arguments complete from a cluster or a control plane, by their alias too.
LIVE_COMMANDS = frozenset({"proxy-status", "proxy-config"})
ALIASES = {"ps": "proxy-status", "pc": "proxy-config"}
DYNAMIC = {"target": "target", "namespace": "namespace", "istio_namespace": "namespace", "context": "context"}


class Shell(enum.StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def register(app: typer.Typer) -> None:
    app.command("completion")(completion)


def completion(shell: Annotated[Shell, typer.Argument(help="The shell to complete in.")]) -> None:
    """Print the shell completion script: TAB completes commands, flags, and pods, Deployments,
    namespaces and proxy IDs from the cluster or a plaintext control plane.

    Examples:

    \b
      source <(meshctl completion bash)           # in ~/.bashrc
      meshctl completion zsh > "${fpath[1]}/_meshctl"
      meshctl completion fish > ~/.config/fish/completions/meshctl.fish
    """
    from meshctl.cli.output import out

    out(script(shell.value))


def script(shell: str) -> str:
    """The completion script for `shell`, as installed with meshctl (Typer's shim)."""
    from typer._completion_shared import get_completion_script

    from meshctl.quickcomplete import COMPLETE_VAR

    return get_completion_script(prog_name="meshctl", complete_var=COMPLETE_VAR, shell=shell).strip("\n") + "\n"


def respond(command: Any, instruction: str) -> Reply:
    """The answer to a completion request the quick path could not serve (no cached tree yet):
    a script for `source_<shell>`, or the tree built now, cached, and asked."""
    import os

    from meshctl import quickcomplete

    if instruction.startswith("source_"):
        return quickcomplete.Reply(script(instruction.removeprefix("source_")))
    data = command_tree(command)
    quickcomplete.save_tree(data)
    reply = quickcomplete.complete(os.environ, quickcomplete.Tree(data))
    return reply if reply is not None else quickcomplete.Reply("", 1)


def command_tree(command: Any, name: str = "meshctl", live: bool = False) -> dict[str, Any]:
    """A command (and its subcommands) as `quickcomplete.Tree` reads it."""
    from typer._click.core import Context
    from typer._types import TyperChoice
    from typer.core import TyperGroup

    context = Context(command, info_name=name)
    live = live or ALIASES.get(name, name) in LIVE_COMMANDS
    node: dict[str, Any] = {"name": ALIASES.get(name, name), "help": (command.short_help or _first_line(command.help))}
    options, arguments = [], []
    for param in command.get_params(context):
        if getattr(param, "hidden", False):
            continue
        entry: dict[str, Any] = {"param": param.name}
        kind = DYNAMIC.get(param.name or "") if live else None
        if kind:
            entry["complete"] = kind
        if isinstance(param.type, TyperChoice):
            entry["choices"] = [str(getattr(choice, "value", choice)) for choice in param.type.choices]
        if param.param_type_name == "argument":
            arguments.append(entry)
            continue
        entry.update(names=[*param.opts, *param.secondary_opts], value=not param.is_flag and not param.count,
                     help=_first_line(param.help))
        options.append(entry)
    node["options"], node["arguments"] = options, arguments
    if isinstance(command, TyperGroup):
        children: dict[str, Any] = {}
        aliases: dict[str, str] = {}
        visible = []
        for child_name in command.list_commands(context):
            child = command.get_command(context, child_name)
            if child is None:
                continue
            if child_name in ALIASES:
                aliases[child_name] = ALIASES[child_name]
                continue
            children[child_name] = command_tree(child, child_name, live)
            if not child.hidden:
                visible.append(child_name)
        aliases.update(_group_aliases(command))
        node.update(commands=children, aliases=aliases, visible=visible)
    return node


def _group_aliases(command: Any) -> Mapping[str, str]:
    """istioctl's short names of proxy-config's subcommands (`c`, `routes`...)."""
    from meshctl.cli import proxy_config

    return proxy_config.ALIASES if isinstance(command, proxy_config.ProxyConfigGroup) else {}


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]
