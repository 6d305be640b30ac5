"""Every module of the library says what it offers: `__all__`, naming only what it defines."""

from __future__ import annotations

import ast
import importlib

import pytest

from testsupport import ROOT

PACKAGE = ROOT / "src" / "meshctl"
# protoc's output, and the command line (its modules are Typer commands, not a library API).
EXEMPT = ("wire/", "cli/")
MODULES = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if not str(path.relative_to(PACKAGE)).startswith(EXEMPT) and path.name != "__main__.py")


def _declared(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = node.value
            assert isinstance(value, ast.List | ast.Tuple), "__all__ is a literal list"
            return [element.value for element in value.elts if isinstance(element, ast.Constant)]
    return None


@pytest.mark.parametrize("module", MODULES)
def test_module_declares_its_public_names(module: str) -> None:
    declared = _declared(ast.parse((PACKAGE / module).read_text()))
    assert declared is not None, f"src/meshctl/{module} has no __all__"
    assert len(declared) == len(set(declared)), f"src/meshctl/{module}: a name twice in __all__"
    name = "meshctl." + module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    imported = importlib.import_module(name.removesuffix(".__init__"))
    missing = [n for n in declared if not hasattr(imported, n)]
    assert not missing, f"src/meshctl/{module}: __all__ names what it does not define: {missing}"
