"""The loader never raises on hostile input, and every problem it reports says FILE:LINE.

10,000 generated files in all: 2,000 drawn choice by choice from Hypothesis (they shrink to a
minimal file on failure) and 8,000 from the same generators seeded once per file (cheaper, for
volume). Each file is loaded, every problem checked for its `file:line: ` prefix, and whatever
loaded cleanly is fed to the analyzers, which must not raise either.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import EXAMPLES, FUZZ, examples, fast_malformed_documents, malformed_documents, mutated_objects

from meshctl import analyze
from meshctl.config.loader import load_file

LOCATED = re.compile(r"^[^:]+:\d+: ")


@pytest.fixture(scope="module")
def scratch() -> Path:
    """A scratch file on tmpfs when there is one: opening files on the overlay disk costs ~1 ms."""
    root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=root) as directory:
        yield Path(directory) / "input.yaml"


def _check(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    result = load_file(str(path))
    for problem in result.problems:
        assert LOCATED.match(str(problem)), str(problem)
        assert problem.file == str(path)
    analyze.run(result.resources)


@settings(FUZZ, max_examples=examples(2000))
@given(data=malformed_documents())
def test_loader_survives_drawn_documents(scratch: Path, data: bytes) -> None:
    _check(scratch, data)


@settings(FUZZ, max_examples=examples(8000))
@given(data=fast_malformed_documents())
def test_loader_survives_seeded_documents(scratch: Path, data: bytes) -> None:
    _check(scratch, data)


_labels = st.dictionaries(st.sampled_from(["app", "version", "istio"]),
                          st.sampled_from(["reviews", "v1", "v2", "ingressgateway", "ratings"]), max_size=2)
_workloads = st.builds(
    lambda name, labels: {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
                          "spec": {"containers": [{"name": "app"}]}},
    st.sampled_from(["reviews-1", "ratings-1", "gw-1"]), _labels)
_services = st.builds(
    lambda name, selector, port: {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                                  "spec": {"selector": selector, "ports": [{"name": "http", "port": port}]}},
    st.sampled_from(["reviews", "ratings", "productpage", "httpbin"]), _labels, st.sampled_from([80, 9080]))


@settings(FUZZ, max_examples=examples(300))
@given(objects=st.lists(st.sampled_from(EXAMPLES) | mutated_objects() | _workloads | _services,
                        min_size=1, max_size=8))
def test_analyzers_survive_mixed_resources(scratch: Path, objects: list[dict]) -> None:
    """Many objects in one file, so that the analyzers see resources that refer to each other."""
    _check(scratch, yaml.safe_dump_all(objects, allow_unicode=True).encode("utf-8", "surrogatepass"))
