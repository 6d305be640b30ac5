"""Shell completion: installed with the tool (`meshctl completion SHELL`), answering each TAB
from the cached command tree without Typer, in each shell's protocol, and fast."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testsupport import ROOT, run_cli

PROBE = ("import sys; from meshctl.__main__ import run; code = run(); "
         "print('typer' in sys.modules, 'kubernetes' in sys.modules, file=sys.stderr); sys.exit(code)")


def tab(cache: Path, line: str, shell: str = "bash", **extra: str) -> subprocess.CompletedProcess[str]:
    """One TAB after `line` (a trailing space: a new word), as the shell's script asks."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), _MESHCTL_COMPLETE=f"complete_{shell}", **extra)
    if shell == "bash":
        words = line.split()
        env.update(COMP_WORDS=line, COMP_CWORD=str(len(words) if line.endswith(" ") else len(words) - 1))
    else:
        env["_TYPER_COMPLETE_ARGS"] = line
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)


def test_the_scripts_come_with_the_tool(capsys: pytest.CaptureFixture[str]) -> None:
    for shell, name in (("bash", "meshctl.bash"), ("zsh", "_meshctl"), ("fish", "meshctl.fish")):
        code, out, _ = run_cli(capsys, "completion", shell)
        assert code == 0 and out == (ROOT / "completions" / name).read_text()
    assert "_MESHCTL_COMPLETE=complete_bash" in run_cli(capsys, "completion", "bash")[1]


def test_a_tab_is_answered_from_the_cached_tree_without_typer(tmp_path: Path) -> None:
    first = tab(tmp_path, "meshctl pc cl")
    assert (first.returncode, first.stdout) == (0, "clusters\n")
    assert first.stderr.split() == ["True", "False"], "no cache yet: the CLI builds the tree"
    second = tab(tmp_path, "meshctl pc cl")
    assert (second.returncode, second.stdout) == (0, "clusters\n")
    assert second.stderr.split() == ["False", "False"], "from the cache: neither Typer nor the Kubernetes client"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("meshctl tra", ["translate"]),
        ("meshctl pc ", ["clusters", "listeners", "routes", "endpoints", "eds", "secret", "bootstrap", "ecds", "all", "log"]),
        ("meshctl proxy-config routes --n", ["--name", "--no-verbose", "--namespace"]),
        ("meshctl pc r", ["routes"]),
        ("meshctl pc route --wi", ["--wide"]),
        ("meshctl ps -o ", ["table", "json", "yaml"]),
        ("meshctl validate -o ", ["log", "json", "yaml"]),
        ("meshctl completion ", ["bash", "zsh", "fish"]),
        ("meshctl translate -f ", []),
        ("meshctl --vk", ["--vklog"]),
    ],
)
def test_what_a_tab_offers(tmp_path: Path, line: str, expected: list[str]) -> None:
    tab(tmp_path, "meshctl ")  # builds the cache
    answer = tab(tmp_path, line)
    assert answer.returncode == 0 and answer.stdout.split() == expected


def test_each_shell_gets_its_own_protocol(tmp_path: Path) -> None:
    tab(tmp_path, "meshctl ")
    zsh = tab(tmp_path, "meshctl pc r", "zsh")
    assert zsh.stdout == "_arguments '*: :((\"routes\":\"Routes (RDS and inline route configurations). Aliases\\\\: route, r.\"))'\n"
    assert tab(tmp_path, "meshctl translate -f ", "zsh").stdout == "_files\n", "nothing to offer: zsh completes files"
    fish = tab(tmp_path, "meshctl pc r", "fish", _TYPER_COMPLETE_FISH_ACTION="get-args")
    assert fish.stdout == "routes\tRoutes (RDS and inline route configurations). Aliases: route, r.\n"
    assert tab(tmp_path, "meshctl pc ", "fish", _TYPER_COMPLETE_FISH_ACTION="is-args").returncode == 0
    assert tab(tmp_path, "meshctl translate -f ", "fish", _TYPER_COMPLETE_FISH_ACTION="is-args").returncode == 1


def test_a_tab_takes_well_under_a_second(tmp_path: Path) -> None:
    """The target is 100 ms (benchmarks/completion.py measures it); on a loaded 2-core CI
    machine the bound is generous, but a TAB that imports Typer or the Kubernetes client again
    would still break it."""
    tab(tmp_path, "meshctl ")
    times = []
    for _ in range(5):
        started = time.monotonic()
        assert tab(tmp_path, "meshctl pc ro").stdout == "routes\n"
        times.append(time.monotonic() - started)
    assert sorted(times)[2] < 0.6, f"median {sorted(times)[2]:.3f} s"
