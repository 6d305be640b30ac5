"""Helpers for schema tests: wrap a spec snippet into a document and check what the loader says.

A snippet marks the line a problem must point at with `# <-`; without a marker the problem is
expected on the `spec:` line.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from meshctl.config.loader import FileResult, load_file

MARKER = "# <-"
SECURITY_KINDS = {"PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"}


def document(kind: str, spec: str, api_version: str | None = None) -> str:
    """A namespace-less document of `kind` named `example` whose spec is the snippet."""
    group = "security.istio.io/v1" if kind in SECURITY_KINDS else "networking.istio.io/v1"
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return f"apiVersion: {api_version or group}\nkind: {kind}\nmetadata:\n  name: example\nspec:\n{body}\n"


def expected_line(text: str) -> int:
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if MARKER in line:
            return number
    return lines.index("spec:") + 1


@pytest.fixture
def load_text(tmp_path: Path) -> Callable[[str], tuple[str, FileResult]]:
    """Write `text` to a file and load it; returns the file name and the loader's result."""

    def load(text: str) -> tuple[str, FileResult]:
        path = tmp_path / "case.yaml"
        path.write_text(text, encoding="utf-8")
        return str(path), load_file(str(path))

    return load


@pytest.fixture
def assert_rejected(load_text: Callable[[str], tuple[str, FileResult]]) -> Callable[..., None]:
    """Assert that a spec snippet yields exactly one problem, at the marked line and field."""

    def check(kind: str, spec: str, field: str, message: str) -> None:
        text = document(kind, spec)
        file, result = load_text(text)
        expected = f"{file}:{expected_line(text)}: {kind} default/example: {field}: {message}"
        assert [str(problem) for problem in result.problems] == [expected]
        assert result.resources == []

    return check


@pytest.fixture
def assert_accepted(load_text: Callable[[str], tuple[str, FileResult]]) -> Callable[[str, str], None]:
    def check(kind: str, spec: str) -> None:
        _, result = load_text(document(kind, spec))
        assert [str(problem) for problem in result.problems] == []
        assert len(result.resources) == 1

    return check
