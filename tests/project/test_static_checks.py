"""The type checker and the linter, run by the suite so that CI (the README's test command) runs
them too: `mypy --strict` on the library, as configured in pyproject.toml (the one strict check
left off, and the untyped packages, are listed there with their reasons), and `ruff` on the
library, the tests and the benchmarks."""

from __future__ import annotations

import subprocess
import sys

from testsupport import ROOT


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_library_type_checks_strictly() -> None:
    done = _run("mypy", "--no-error-summary", "--cache-dir", str(ROOT / ".mypy_cache"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", "--quiet", "src", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_says_it_is_typed() -> None:
    """PEP 561: without the marker, users' type checkers ignore meshctl's annotations."""
    assert (ROOT / "src" / "meshctl" / "py.typed").is_file()
