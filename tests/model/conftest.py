"""Helpers for model tests: load YAML documents (validated, as the loader gives them) into a registry."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from meshctl.config.loader import load_file
from meshctl.config.resource import Resource
from meshctl.model.registry import Registry, build_registry

Resources = Callable[..., list[Resource]]


@pytest.fixture
def resources(tmp_path: Path) -> Resources:
    """The documents (each dedented) of one file, which must all be valid."""

    def load(*documents: str) -> list[Resource]:
        path = tmp_path / "input.yaml"
        path.write_text("---\n".join(textwrap.dedent(doc).strip("\n") + "\n" for doc in documents))
        result = load_file(str(path))
        assert [str(problem) for problem in result.problems] == []
        return result.resources

    return load


@pytest.fixture
def registry_of(resources: Resources) -> Callable[..., Registry]:
    return lambda *documents: build_registry(resources(*documents))
