"""Fixtures for translation tests: load inputs, build a snapshot, generate for one proxy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from consistent import assert_consistent
from meshctl.config.loader import load
from meshctl.generate.proxy import ProxyConfig, generate
from meshctl.model.snapshot import MeshSnapshot, build_snapshot
from testsupport import BASE, EXAMPLES



def snapshot_of(*paths: str | Path, namespace: str = "default") -> MeshSnapshot:
    result = load([str(p) for p in paths], namespace)
    assert not result.problems, "\n".join(map(str, result.problems))
    return build_snapshot(result.resources)


def translate(snapshot: MeshSnapshot, target: str, **options: object) -> ProxyConfig:
    """Generate `target`'s config, failing the test if its resources are not consistent."""
    config = generate(snapshot, snapshot.proxy(target, **options))
    assert_consistent(config.packed(), target)
    return config


@pytest.fixture
def mesh() -> Callable[..., MeshSnapshot]:
    """Build a snapshot from files (the way `translate -f` would)."""
    return snapshot_of


@pytest.fixture
def config_for() -> Callable[..., ProxyConfig]:
    """Generate one proxy's config from a snapshot and a POD.NS / deploy/NAME.NS target."""
    return translate


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text to a fresh file and return its path."""
    counter = iter(range(1_000_000))

    def write(text: str) -> Path:
        path = tmp_path / f"input-{next(counter)}.yaml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def seed() -> MeshSnapshot:
    return snapshot_of(EXAMPLES / "seed-reviews")


@pytest.fixture
def bookinfo() -> MeshSnapshot:
    return snapshot_of(EXAMPLES / "bookinfo")


@pytest.fixture
def client_config(write_yaml: Callable[[str], Path]) -> Callable[..., ProxyConfig]:
    """Config of the `client` sidecar for BASE plus extra YAML documents."""

    def build(extra: str = "", target: str = "deploy/client.default", **options: object) -> ProxyConfig:
        snapshot = snapshot_of(write_yaml(BASE + "\n---\n" + extra if extra else BASE))
        return translate(snapshot, target, **options)

    return build
