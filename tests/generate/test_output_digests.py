"""Translation output pinned byte for byte: every proxy of every example, of a mesh holding every
config variant and of the benchmark's generated mesh, in both proxy flavors.

The expectation (`data/output-digests.json`) holds each resource's name and a hash of its
serialized bytes (blake2b, 8 bytes: what the content version was when the file was written) in
push order. The bytes, not the version, are pinned: a version may be derived another way (a
route configuration's from its virtual hosts' digests) without a byte of output changing. It was written by the translator
before its speed-ups (pre-serialized templates, prototypes copied instead of rebuilt): any
optimisation must leave every byte as it was. A change of output that is meant must be checked
by hand (the whole-proto goldens, `meshctl translate`) before the file is rewritten with
MESHCTL_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import mesh_variants
from meshctl.config.loader import load, load_data
from meshctl.config.resource import Resource
from meshctl.generate.proxy import generate
from meshctl.model.snapshot import build_snapshot
from testsupport import BASE, EXAMPLES, ROOT, assert_matches_golden

EXPECTED = Path(__file__).parent / "data" / "output-digests.json"


def _generated_mesh() -> list[Resource]:
    """The benchmark's mesh (benchmarks/meshgen.py) at 12 services: the shape that is timed."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from meshgen import mesh_yaml
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return _loaded(load_data(mesh_yaml(12).encode(), "mesh.yaml"))


def _variants_mesh() -> list[Resource]:
    text = BASE + "---\n" + yaml.safe_dump_all(mesh_variants.documents())
    return _loaded(load_data(text.encode(), "variants.yaml"))


def _loaded(result: Any) -> list[Resource]:
    assert not result.problems, "\n".join(map(str, result.problems[:5]))
    return list(result.resources)


def _example(name: str) -> list[Resource]:
    return _loaded(load([str(EXAMPLES / name)], "default"))


def _cases() -> dict[str, tuple[list[Resource], tuple[str, ...]]]:
    """Each case's resources, and the proxies it pins (all its pods when none are named)."""
    cases = {f"examples/{path.name}": (_example(path.name), ()) for path in sorted(EXAMPLES.iterdir()) if path.is_dir()}
    cases["mesh-variants"] = (_variants_mesh(), ())
    # The benchmark's proxy, and one in another namespace holding only the v2 subset's pod.
    cases["benchmark-mesh"] = (_generated_mesh(), ("svc0-0.ns0", "svc1-2.ns1"))
    return cases


def _digest(value: bytes) -> str:
    return hashlib.blake2b(value, digest_size=8).hexdigest()


def _digests() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case, (resources, named) in _cases().items():
        snapshot = build_snapshot(resources)
        proxy_ids = named or sorted(w.proxy_id for w in snapshot.registry.workloads if w.kind == "Pod")
        for proxy_id in proxy_ids:
            for flavor, extensions in (("envoy", False), ("istio-proxy", True)):
                config = generate(snapshot, snapshot.proxy(proxy_id, istio_extensions=extensions))
                out[f"{case} {proxy_id} {flavor}"] = {
                    type_url.rsplit(".", 1)[-1]: [f"{_digest(packed.value)} {name}" for name, packed in resources_.items()]
                    for type_url, resources_ in config.packed().items()
                }
    return out


@pytest.mark.timeout(300)
def test_every_proxy_of_every_case_gets_the_pinned_bytes() -> None:
    digests = _digests()
    assert len(digests) >= 40, "the cases hold too few proxies to pin much"
    assert_matches_golden(EXPECTED, json.dumps(digests, indent=1, sort_keys=True) + "\n")
