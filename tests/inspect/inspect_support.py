"""Helpers for the inspect tests: hand-written inputs, golden files, a frozen clock.

Golden files are compared byte for byte. To regenerate them after a deliberate change, run the
tests with MESHCTL_UPDATE_GOLDEN=1 and review the diff by hand (see golden/README.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from testsupport import assert_matches_golden

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"
FROZEN_NOW = datetime(2026, 6, 1, tzinfo=UTC)


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def assert_golden(name: str, actual: str) -> None:
    assert_matches_golden(GOLDEN / name, actual)
