"""The README's gateway example is what `meshctl translate` prints for examples/gateway: the
listeners of an ingress gateway serving an Istio Gateway and a Gateway API Gateway."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

from testsupport import ROOT, run_cli


def _readme_example() -> tuple[list[str], list[str]]:
    """The command of the README's block that translates examples/gateway, and its output lines."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    (block,) = [b for b in blocks if b.startswith("$ meshctl translate -f examples/gateway")]
    command, *output = block.rstrip("\n").split("\n")
    return shlex.split(command.removeprefix("$ meshctl ")), output


def test_the_readme_shows_what_translate_prints_for_the_gateway_example(capsys: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    argv, shown = _readme_example()
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert (err + out).rstrip("\n").split("\n") == shown
