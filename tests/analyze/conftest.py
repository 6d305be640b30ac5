"""Helpers for analyzer tests: load a multi-document YAML text and run the analyzers on it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshctl import analyze
from meshctl.analyze import Finding
from meshctl.config.loader import load_file


@dataclass
class Analysis:
    file: str
    text: str
    findings: list[Finding]

    def line(self, needle: str, occurrence: int = 1) -> int:
        """The line number of the `occurrence`-th line containing `needle`."""
        seen = 0
        for number, line in enumerate(self.text.splitlines(), start=1):
            if needle in line:
                seen += 1
                if seen == occurrence:
                    return number
        raise AssertionError(f"{needle!r} not in the input")

    def where(self, needle: str, occurrence: int = 1) -> str:
        return f"{self.file}:{self.line(needle, occurrence)}"

    def lines(self) -> list[str]:
        return [str(finding) for finding in self.findings]

    def codes(self) -> list[str]:
        return [finding.code for finding in self.findings]


@pytest.fixture
def analyze_yaml(tmp_path: Path) -> Callable[..., Analysis]:
    """Load the parts (each dedented) as the documents of one file, insist they are valid, and
    return what the analyzers say."""

    def run(*parts: str, name: str = "mesh.yaml") -> Analysis:
        text = "---\n".join(textwrap.dedent(part).strip("\n") + "\n" for part in parts)
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = load_file(str(path))
        assert [str(problem) for problem in result.problems] == []
        return Analysis(str(path), text, analyze.run(result.resources))

    return run
