"""`explain` on a generated 1,000-service mesh (benchmarks/meshgen.py): the right route, subset
and endpoint for a service in the middle, its VirtualService's line among thousands, and the
same answer from the translation's dump, read section by section."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from explain_support import run
from meshctl.explain.engine import explain
from meshctl.explain.request import parse_request
from meshctl.explain.sources import Subject, from_inputs
from meshctl.explain.view import document_view

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from meshgen import mesh_yaml  # noqa: E402

SERVICES = 1000
MIDDLE = 777


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Subject]:
    path = tmp_path_factory.mktemp("scale") / "mesh.yaml"
    path.write_text(mesh_yaml(SERVICES, pods=1))
    found = from_inputs([str(path)], "svc3-0.ns3", "default")
    return path, found


def _last(data: dict[str, Any], stage: str) -> dict[str, Any]:
    return [step for step in data["steps"] if step["stage"] == stage][-1]


def test_route_and_its_line_among_a_thousand(mesh: tuple[Path, Subject]) -> None:
    path, found = mesh
    host = f"svc{MIDDLE}.ns{MIDDLE % 10}"
    jason = run(found, f"http://{host}:8080/", headers=["end-user: jason"]).data()
    lines = path.read_text().splitlines()
    kind = next(i for i, line in enumerate(lines) if line == "kind: VirtualService"
                and lines[i + 1] == f"metadata: {{name: svc{MIDDLE}, namespace: ns{MIDDLE % 10}}}")
    assert lines[kind + 5].startswith("  - match:")
    assert _last(jason, "route")["sources"] == [{"resource": f"VirtualService ns{MIDDLE % 10}/svc{MIDDLE}",
                                                 "location": f"{path}:{kind + 6}", "field": "spec.http[0].match[0]"}]
    cluster = f"outbound|8080|v2|{host}.svc.cluster.local"
    assert _last(jason, "cluster")["name"] == cluster
    # one pod per service, and it is v1: v2 has none, which Envoy answers with 503
    assert jason["outcome"] == {"verdict": "rejected", "summary": f"cluster {cluster} has no endpoints: 503",
                                "status": 503, "code": "no-endpoints"}
    others = run(found, f"http://{host}:8080/").data()
    assert others["outcome"]["summary"] == f"forwarded to outbound|8080|v1|{host}.svc.cluster.local (1 endpoint, 1 healthy)"


def test_the_dump_answers_alike(mesh: tuple[Path, Subject], tmp_path: Path) -> None:
    from meshctl.formats import OutputFormat
    from meshctl.generate.proxy import generate
    from meshctl.inspect.rendered import render
    from meshctl.model.snapshot import build_snapshot
    from meshctl.config.loader import load

    path, found = mesh
    snapshot = build_snapshot(load([str(path)]).resources)
    proxy = snapshot.proxy("svc3-0.ns3")
    dump = render(generate(snapshot, proxy).packed(), "all", OutputFormat.json).encode()
    view = document_view(dump, "dump.json", found.view.identity)
    host = f"svc{MIDDLE}.ns{MIDDLE % 10}"
    request = parse_request(f"http://{host}:8080/", headers=["end-user: jason"])
    from_dump = explain(view, request).data()
    translated = run(found, f"http://{host}:8080/", headers=["end-user: jason"],
                     address=from_dump["request"]["destination"]["address"] or None).data()
    assert [(s["stage"], s["name"]) for s in from_dump["steps"]] == \
           [(s["stage"], s["name"]) for s in translated["steps"] if s["stage"] != "destination"]
    assert from_dump["outcome"] == translated["outcome"]
