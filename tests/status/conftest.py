"""Fixtures for the proxy-status tests: a real mesh (serve and two Envoys) shared by a test
module, and the Kubernetes emulator of tests/k8s.

The emulator's fixtures live in tests/k8s/conftest.py; they are loaded from there (with their
helper modules `emulator` and `seeds` on the path) rather than copied, so both suites test
against the same emulator.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from status_world import World

from meshctl.loopback import Processes

K8S_TESTS = Path(__file__).resolve().parents[1] / "k8s"
if str(K8S_TESTS) not in sys.path:
    sys.path.append(str(K8S_TESTS))
_spec = importlib.util.spec_from_file_location("k8s_fixtures", K8S_TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_k8s = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_k8s)
api_server = _k8s.api_server
emulator = _k8s.emulator
kubeconfig = _k8s.kubeconfig


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The mesh of status_world.py, running for the whole test module."""
    with Processes() as processes:
        running = World(tmp_path_factory.mktemp("mesh"), processes.start)
        try:
            yield running.start()
        finally:
            running.stop()
