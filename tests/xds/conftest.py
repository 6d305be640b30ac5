"""Fixtures for the control-plane tests: an in-process server fed from memory, ADS clients,
and (re-exported from tests/envoy_harness.py) real Envoys, backends and helper processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from envoy_harness import backends, envoys, processes  # noqa: F401  (fixtures)
from helpers import Plane
from world import World, make_world


@pytest.fixture
async def plane() -> AsyncIterator[Plane]:
    """A started server on free loopback ports (gRPC and debug HTTP) with the fake translator."""
    running = Plane()
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def world(tmp_path: Path, backends: Any, envoys: Any, processes: Any) -> World:  # noqa: F811 (fixtures)
    """Backends x and y, a config dir where pod `web` routes `backend` to x, and serve on it."""
    return make_world(tmp_path, backends, envoys, processes)
