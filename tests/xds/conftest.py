"""Fixtures for the control-plane tests: an in-process server fed from memory, ADS clients,
and (re-exported from tests/envoy_harness.py) real Envoys, backends and helper processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from envoy_harness import backends, envoys, processes  # noqa: F401  (fixtures)
from helpers import Plane


@pytest.fixture
async def plane() -> AsyncIterator[Plane]:
    """A started server on free loopback ports (gRPC and debug HTTP) with the fake translator."""
    running = Plane()
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
