"""The layers ARCHITECTURE.md draws, checked on the source: data moves one way.

Every import in every module counts, including those inside functions (the lazy ones that keep
start-up fast are still dependencies). A package may use the ones below it, never the ones above.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from testsupport import ROOT

PACKAGE = ROOT / "src" / "meshctl"

# package → packages of meshctl it must never import
FORBIDDEN = {
    "resources": {"cli", "config", "generate", "model", "security", "sources", "status", "inspect", "xds", "analyze",
                  "agent"},
    "model": {"cli", "generate", "xds", "status", "inspect"},
    "generate": {"cli", "xds", "status", "inspect"},
    "xds": {"cli", "generate", "model", "status", "inspect", "security", "agent"},
    "security": {"cli", "xds", "generate", "agent"},
    "agent": {"cli", "status", "inspect", "sources", "analyze", "capture"},
}


def _modules(package: str) -> Iterator[Path]:
    yield from sorted((PACKAGE / package).rglob("*.py"))


def _imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, meshctl package) for every import of meshctl code in the module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "meshctl" else [f"meshctl.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "meshctl" and len(parts) > 1:
                yield node.lineno, parts[1]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_the_layers_below_them(package: str) -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: imports meshctl.{target}"
             for path in _modules(package) for line, target in _imported(path) if target in FORBIDDEN[package]]
    assert not found, "\n".join(found)


def test_only_the_cli_prints() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        # __main__ is the program's entry, part of the CLI: it answers a TAB before importing
        # meshctl.cli (and Typer), which is what makes completion fast.
        if path.is_relative_to(PACKAGE / "cli") or path == PACKAGE / "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            prints = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
            streams = (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
                       and isinstance(node.value, ast.Name) and node.value.id == "sys")
            if prints or streams:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, "only meshctl.cli writes to the terminal:\n" + "\n".join(found)


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from meshctl.xds import server\n    import meshctl.model.node\n"
                      "from meshctl import generate\n")
    assert sorted(target for _, target in _imported(module)) == ["generate", "model", "xds"]
