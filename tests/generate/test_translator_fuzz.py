"""The translator never raises, and Envoy accepts what it makes of any input the loader accepts.

Together with tests/config/test_loader_fuzz.py this throws 10,000 generated hostile files at the
loader (numbers and durations past every range and YAML aliases among them) and hands whatever
survives to the translator, next to a small fixed mesh so there is always a proxy to translate
for; every resource it makes must also print as JSON, as `translate -o json` and config dumps
do. A second property takes sets of valid (and mutated) Istio objects and asks real Envoy
(`--mode validate`) to accept the result.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import EXAMPLES, FUZZ, examples, fast_malformed_documents, mutated_objects

from consistent import assert_consistent
from meshctl.config.loader import load_file
from meshctl.envoybin import validate_bootstrap
from meshctl.generate.bootstrap import static_bootstrap
from meshctl.generate.proxy import generate
from meshctl.model.snapshot import build_snapshot
from testsupport import BASE


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=root) as directory:
        path = Path(directory)
        (path / "base.yaml").write_text(BASE)
        yield path


@pytest.fixture(scope="module")
def base(scratch: Path) -> list:
    return load_file(str(scratch / "base.yaml")).resources


_PRINTED: set[bytes] = set()  # resources already printed as JSON (most repeat from input to input)
_PROXIES = 10  # a Deployment scaled to thousands of replicas adds only more of the same proxies


def _translate_all(scratch: Path, base: list, data: bytes) -> list:
    """Load the file and, when anything survives, generate config next to the fixed mesh for
    every workload (a file the loader refuses entirely leaves nothing new to translate)."""
    (scratch / "input.yaml").write_bytes(data)
    loaded = load_file(str(scratch / "input.yaml")).resources
    if not loaded:
        return []
    keys = {r.key for r in loaded}
    snapshot = build_snapshot(loaded + [r for r in base if r.key not in keys])
    configs = []
    for workload in snapshot.registry.workloads[:_PROXIES]:
        proxy = snapshot.proxy(workload.proxy_id)
        config = generate(snapshot, proxy)
        assert_consistent(config.packed(), proxy.id)
        for message in (*config.clusters, *config.listeners, *config.routes, *config.endpoints):
            wire = message.SerializeToString(deterministic=True)
            if wire not in _PRINTED:
                json_format.MessageToJson(message)
                _PRINTED.add(wire)
        configs.append((proxy, config))
    return configs


@settings(FUZZ, max_examples=examples(10_000))
@given(data=fast_malformed_documents())
def test_translator_survives_whatever_the_loader_accepts(scratch: Path, base: list, data: bytes) -> None:
    _translate_all(scratch, base, data)


@settings(FUZZ, max_examples=examples(40))
@given(objects=st.lists(st.sampled_from(EXAMPLES) | mutated_objects(), min_size=1, max_size=6))
def test_envoy_accepts_the_translation_of_valid_input(scratch: Path, base: list, objects: list[dict]) -> None:
    data = yaml.safe_dump_all(objects, allow_unicode=True).encode("utf-8", "surrogatepass")
    translated = _translate_all(scratch, base, data)
    if not translated:
        return
    proxy, config = translated[0]
    verdict = validate_bootstrap(static_bootstrap(proxy, config))
    assert verdict.ok, f"{verdict.output}\n--- input ---\n{data.decode(errors='replace')}"
