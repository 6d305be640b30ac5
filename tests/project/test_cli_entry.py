"""The root of the command line: options that come before any command."""

from __future__ import annotations

from importlib.metadata import version

from meshctl.cli import main


def test_version_prints_the_installed_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"meshctl {version('meshctl')}\n"


def test_unknown_root_option_is_a_usage_error(capsys) -> None:
    assert main(["--versoin"]) == 64
    assert "No such option: --versoin" in capsys.readouterr().err
