"""The README's quickstart is exactly two commands (install and run the demo; install and run
the tests), and CI runs the second one verbatim."""

from __future__ import annotations

import re

from testsupport import ROOT


def _quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_quickstart_has_two_single_line_commands() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
    main_job, tests = commands
    assert main_job.endswith("meshctl demo") and "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _quickstart_commands()[1] in ci
