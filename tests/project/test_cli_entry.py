"""The root of the command line: options that come before any command."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from meshctl.cli import main
from testsupport import EXAMPLES


def test_version_prints_the_installed_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"meshctl {version('meshctl')}\n"


def test_unknown_root_option_is_a_usage_error(capsys) -> None:
    assert main(["--versoin"]) == 64
    assert "No such option: --versoin" in capsys.readouterr().err


def test_commands_do_not_import_pydantic(tmp_path) -> None:
    """Start-up is a feature (proxy-config and proxy-status run in CI loops and on every TAB);
    pydantic alone costs ~90 ms, and typer 0.29+ imports it to coerce every parameter."""
    script = ("import sys; from meshctl.cli import main; code = main(['validate', '-f', sys.argv[1]]); "
              "print(code, 'pydantic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, str(EXAMPLES / "bookinfo")],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == ["0", "False"], done.stdout + done.stderr
