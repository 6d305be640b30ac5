"""Shell completion that answers a TAB in well under 100 ms.

The shell scripts `meshctl completion bash|zsh|fish` prints run `meshctl` on every TAB with
`_MESHCTL_COMPLETE=complete_<shell>` (Typer's protocol, whose scripts they are). Building the
command line with Typer alone takes most of that budget, and reading pods with the Kubernetes
client or proxies with gRPC takes several times it. So a TAB is answered here, by code that
imports only the standard library (and PyYAML for a kubeconfig):

- the command tree (commands, aliases, options, which take values, their choices, and which
  arguments complete from a cluster or a control plane) is exported by the CLI once, as JSON,
  into the user's cache directory, keyed by meshctl's version and the CLI's source files; a
  TAB reads it back (`Tree`);
- pods, Deployments, namespaces and contexts come from the cluster through a minimal reader of
  the kubeconfig (`meshctl.kube.quick`), proxy IDs from a plaintext control plane's syncz.

When there is no usable cache the CLI builds the tree, answers with the same code here, and
writes the cache for the next TAB. Only the CLI calls this module; it returns text to print.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

__all__ = ["COMPLETE_VAR", "Reply", "Tree", "cached_tree", "complete", "save_tree"]

COMPLETE_VAR = "_MESHCTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


class Reply:
    """What the shell gets: text on stdout and an exit code (fish asks "any?" by exit code).
    A plain class: `dataclasses` alone would cost a tenth of the time a TAB may take."""

    __slots__ = ("code", "text")

    def __init__(self, text: str, code: int = 0) -> None:
        self.text = text
        self.code = code


class Tree:
    """The command tree as the CLI exported it: per command, its subcommands by every name it
    answers to (`visible` lists those to offer), its options, its arguments' completers."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def child(self, node: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
        commands: Mapping[str, Any] = node.get("commands", {})
        target = node.get("aliases", {}).get(name, name)
        found = commands.get(target)
        return found if isinstance(found, dict) else None


def _fingerprint() -> str:
    """meshctl's version and the CLI's source files (name, modification time, size): a change
    to either rebuilds the tree."""
    from meshctl import __version__

    package = os.path.dirname(os.path.abspath(__file__))
    cli = os.path.join(package, "cli")
    files = [os.path.join(cli, name) for name in os.listdir(cli) if name.endswith(".py")]
    files += [os.path.join(package, "formats.py"), os.path.join(package, "targets.py")]
    parts = [__version__]
    for path in sorted(files):
        stat = os.stat(path)
        parts.append(f"{os.path.basename(path)}:{stat.st_mtime_ns}:{stat.st_size}")
    return ";".join(parts)


def _cache_file() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "meshctl", "completion-tree.json")


def cached_tree() -> Tree | None:
    """The exported tree, if the cache holds one for this meshctl."""
    try:
        with open(_cache_file(), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != _fingerprint():
        return None
    return Tree(data["tree"])


def save_tree(tree: Mapping[str, Any]) -> None:
    """Keep the tree for the next TAB; a cache that cannot be written only costs speed."""
    import tempfile

    path = _cache_file()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(path), delete=False, suffix=".tmp") as handle:
            json.dump({"key": _fingerprint(), "tree": tree}, handle)
        os.replace(handle.name, path)
    except OSError:
        return


def complete(environ: Mapping[str, str], tree: Tree) -> Reply | None:
    """The answer to one TAB, or None when the variable asks for something else (a script)."""
    instruction = environ.get(COMPLETE_VAR, "")
    shell = instruction.removeprefix("complete_")
    if not instruction.startswith("complete_") or shell not in SHELLS:
        return None
    args, incomplete = _words(shell, environ)
    candidates = _candidates(tree, args, incomplete)
    if shell == "bash":
        return Reply("\n".join(value for value, _ in candidates))
    if shell == "zsh":
        if not candidates:
            return Reply("_files")
        entries = "\n".join(f'"{_zsh(value)}":"{_zsh(text)}"' if text else f'"{_zsh(value)}"' for value, text in candidates)
        return Reply(f"_arguments '*: :(({entries}))'")
    if environ.get("_TYPER_COMPLETE_FISH_ACTION") == "is-args":
        return Reply("", 0 if candidates else 1)
    return Reply("\n".join(f"{value}\t{' '.join(text.split())}" if text else value for value, text in candidates))


def _zsh(text: str) -> str:
    """Typer's escaping for one zsh `_arguments` entry."""
    return (text.replace('"', '""').replace("'", "''").replace("$", "\\$").replace("`", "\\`")
            .replace(":", r"\\:"))


def _split(text: str) -> list[str]:
    """Words as the shell would give them; an unfinished quote ends the last word."""
    try:
        return shlex.split(text)
    except ValueError:
        try:
            return shlex.split(text + '"')
        except ValueError:
            return shlex.split(text + "'")


def _words(shell: str, environ: Mapping[str, str]) -> tuple[list[str], str]:
    """The words after `meshctl`, and the one being completed (Typer's protocol per shell)."""
    if shell == "bash":
        words = _split(environ.get("COMP_WORDS", ""))
        index = int(environ.get("COMP_CWORD", "0") or 0)
        return words[1:index], words[index] if index < len(words) else ""
    line = environ.get("_TYPER_COMPLETE_ARGS", "")
    words = _split(line)[1:]
    if words and not line.endswith(" "):
        return words[:-1], words[-1]
    return words, ""


def _candidates(tree: Tree, args: Sequence[str], incomplete: str) -> list[tuple[str, str]]:
    """(value, help) pairs for the word being completed after `args`."""
    node: Mapping[str, Any] = tree.data
    path: list[str] = []
    given: dict[str, str] = {}
    pending: Mapping[str, Any] | None = None
    positional = 0
    for arg in args:
        if pending is not None:
            given[pending["param"]] = arg
            pending = None
            continue
        if arg.startswith("-") and arg != "-":
            name, equals, value = arg.partition("=")
            option = _option(node, name)
            if option is not None and option.get("value") and not equals:
                pending = option
            elif option is not None:
                given[option["param"]] = value if equals else "true"
            continue
        child = tree.child(node, arg)
        if child is not None and not positional:
            node, path = child, [*path, child["name"]]
            continue
        positional += 1
    if pending is not None:
        return _values(pending, incomplete, path, given)
    if incomplete.startswith("-"):
        return [(name, option.get("help", "")) for option in node.get("options", [])
                for name in option["names"] if name.startswith(incomplete)]
    if node.get("commands"):
        return [(name, node["commands"][name].get("help", "")) for name in node.get("visible", [])
                if name.startswith(incomplete)]
    arguments = node.get("arguments", [])
    return _values(arguments[positional], incomplete, path, given) if positional < len(arguments) else []


def _option(node: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    options: list[Mapping[str, Any]] = node.get("options", [])
    return next((option for option in options if name in option["names"]), None)


def _values(param: Mapping[str, Any], incomplete: str, path: Sequence[str],
            given: Mapping[str, str]) -> list[tuple[str, str]]:
    """An option's value or an argument: its choices, or what its completer finds (none: the
    shell completes files)."""
    choices = param.get("choices") or []
    if choices:
        return [(choice, "") for choice in choices if choice.startswith(incomplete)]
    kind = param.get("complete")
    return [(value, "") for value in _dynamic(kind, incomplete, path, given)] if kind else []


def _dynamic(kind: str, incomplete: str, path: Sequence[str], given: Mapping[str, str]) -> list[str]:
    """Values from outside: pods and Deployments, namespaces and contexts of the cluster, or
    the proxies a plaintext control plane lists. Anything that fails gives no values; a TAB
    must never print an error."""
    try:
        values = _PROVIDERS[kind](incomplete, path, given)
    except Exception:  # noqa: BLE001 - completion degrades to nothing, never to a traceback
        return []
    return sorted(value for value in values if value.startswith(incomplete))


def _targets(incomplete: str, path: Sequence[str], given: Mapping[str, str]) -> list[str]:
    """`POD[.NS]` and `deploy/NAME[.NS]`: proxy IDs from the control plane when proxy-status
    names a plaintext one, else running pods (or Deployments, after `deploy/`) of the cluster."""
    from meshctl.kube import quick

    if path and path[0] == "proxy-status" and given.get("xds_address") and given.get("plaintext"):
        return quick_proxy_ids(given["xds_address"])
    namespace = given.get("namespace")
    kind, _, _ = incomplete.rpartition("/")
    if kind:
        names = quick.names(given.get("kubeconfig"), given.get("context"), namespace, "deployments")
        return [f"{kind}/{name}" for name in names]
    return quick.names(given.get("kubeconfig"), given.get("context"), namespace, "pods")


def quick_proxy_ids(address: str) -> list[str]:
    """The proxy IDs a plaintext control plane (meshctl serve, istiod's 15010) lists in syncz."""
    from meshctl.resources import SYNCZ
    from meshctl.status.client import DebugClient, Endpoint
    from meshctl.status.syncz import read_syncz

    with DebugClient(Endpoint(address, address), timeout=2.0) as client:
        return [row.proxy_id for row in read_syncz({address: client.ask(SYNCZ)})]


def _namespaces(incomplete: str, path: Sequence[str], given: Mapping[str, str]) -> list[str]:
    from meshctl.kube import quick

    return quick.names(given.get("kubeconfig"), given.get("context"), None, "namespaces")


def _contexts(incomplete: str, path: Sequence[str], given: Mapping[str, str]) -> list[str]:
    from meshctl.kube import quick

    return quick.contexts(given.get("kubeconfig"))


_PROVIDERS: dict[str, Callable[[str, Sequence[str], Mapping[str, str]], list[str]]] = {
    "target": _targets,
    "namespace": _namespaces,
    "context": _contexts,
}
