"""Help that teaches: every command and subcommand shows an example of itself; mistyped
subcommands get a suggestion; istioctl's global flags are accepted where istioctl takes them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from testsupport import run_cli


def _commands() -> Iterator[tuple[str, ...]]:
    """Every visible command path of the CLI (`("proxy-config", "routes")`, ...), the lazily
    built proxy-config subcommands included."""
    from typer._click.core import Context
    from typer.core import TyperGroup
    from typer.main import get_command

    from meshctl.cli import app

    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if path:
            yield path
        if isinstance(command, TyperGroup):
            context = Context(command)
            for name in command.list_commands(context):
                child = command.get_command(context, name)
                if child is not None and not child.hidden:
                    yield from walk(child, (*path, name))

    yield from walk(get_command(app), ())


COMMANDS = list(_commands())


def test_the_walk_finds_the_whole_tree() -> None:
    assert {("translate",), ("proxy-status",), ("proxy-config", "routes"), ("proxy-config", "log")} <= set(COMMANDS)
    assert len(COMMANDS) >= 17


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_shows_an_example_of_itself(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, *path, "--help")
    assert code == 0
    assert "Example" in out, f"meshctl {' '.join(path)} --help has no example"
    examples = out.split("Example", 1)[1]
    spelled = {" ".join(path), " ".join(("pc", *path[1:])) if path[0] == "proxy-config" else " ".join(path)}
    assert any(f"meshctl {name}" in examples for name in spelled), f"the example does not run {' '.join(path)}"


def test_mistyped_proxy_config_subcommands_get_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "pc", "clsuters", "-f", "dump.json")
    assert code == 64 and "No such command 'clsuters'. Did you mean 'clusters'" in err
    code, _, err = run_cli(capsys, "proxy-config", "secrte")
    assert code == 64 and "Did you mean 'secret'?" in err


def test_istioctl_command_lines_with_the_istio_namespace_run_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    from testsupport import ROOT

    dump = str(ROOT / "tests" / "inspect" / "data" / "sidecar_dump.json")
    plain = run_cli(capsys, "pc", "clusters", "-f", dump)
    for flag in ("-i", "--istioNamespace", "--istio-namespace"):
        assert run_cli(capsys, "pc", "clusters", "-f", dump, flag, "istio-system") == plain
    assert plain[0] == 0
