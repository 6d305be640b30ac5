"""Istio's own documentation examples load cleanly, in every API version Istio serves them in.

The examples under valid/ are written the way istio.io writes them: no namespace, short host
names, the v1 apiVersion. Each is also tried as v1beta1 and v1alpha3 (security: v1beta1), since
one schema must serve all of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshctl.config.loader import load_file

VALID = Path(__file__).parent / "valid"
VERSIONS = {
    "networking.istio.io": ("v1", "v1beta1", "v1alpha3"),
    "security.istio.io": ("v1", "v1beta1"),
}


def _documents() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(VALID.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found.append((f"{path.stem}/{document['metadata']['name']}", document))
    return found


DOCUMENTS = _documents()
CASES = [
    (f"{name}@{version}", document, version)
    for name, document in DOCUMENTS
    for version in VERSIONS[document["apiVersion"].split("/")[0]]
]


@pytest.mark.parametrize(("document", "version"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_example_loads(tmp_path: Path, document: dict, version: str) -> None:
    group = document["apiVersion"].split("/")[0]
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump({**document, "apiVersion": f"{group}/{version}"}, sort_keys=False))
    result = load_file(str(path))
    assert [str(problem) for problem in result.problems] == []
    [resource] = result.resources
    assert (resource.kind, resource.version, resource.name) == (document["kind"], version, document["metadata"]["name"])
    assert resource.namespace == document["metadata"].get("namespace", "default")


def test_every_kind_has_examples() -> None:
    kinds = {document["kind"] for _, document in DOCUMENTS}
    assert kinds == {
        "VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry",
        "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication",
    }


def test_whole_files_load(tmp_path: Path) -> None:
    """The files as written, multi-document, keep their line numbers and load every object."""
    for path in sorted(VALID.glob("*.yaml")):
        result = load_file(str(path))
        assert [str(problem) for problem in result.problems] == []
        assert len(result.resources) == sum(1 for name, _ in DOCUMENTS if name.startswith(f"{path.stem}/"))
