"""Reading input files: line numbers, hostile input, multi-document and List handling, CLI exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshctl.config.documents import MAX_DEPTH, parse_text
from meshctl.config.loader import load, load_file

SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  ports:
  - name: http
    port: 9080
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "in.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_every_field_knows_its_line() -> None:
    (doc,), errors = parse_text("a: 1\nb:\n  c:\n    - x\n    - y: 2\n", "f.yaml")
    assert not errors
    assert doc.lines[("b", "c", 1, "y")] == 5
    assert doc.line_of(("b", "c", 1, "missing")) == 5
    assert doc.line_of(("nothing",)) == 1


def test_problems_name_file_line_object_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, SERVICE + "  selctor: {app: reviews}\n")
    (problem,) = load_file(str(path)).problems
    assert str(problem) == f"{path}:9: Service default/reviews: spec.selctor: unknown field 'selctor' (did you mean 'selector'?)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [1, 2\n", "invalid YAML"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("- 1\n- 2\n", "document is a list"),
        ("just a string\n", "document is a str"),
        (b"\x00\x01\x02binary", "not a text file"),
        (b"kind: \xff\xfe\xfd bad", "not UTF-8"),
        ("a: &x [1]\nb: *x\n<<: *x\n", "merge keys"),
        ("a: !custom 1\n", "unsupported YAML tag"),
        ("[" * 200 + "]" * 200, "nested deeper"),
        ("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
         "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
         "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", "YAML aliases expand to more than"),
    ],
)
def test_hostile_input_becomes_a_located_problem(tmp_path: Path, content: str | bytes, message: str) -> None:
    result = load([str(_write(tmp_path, content))])
    assert result.problems, "must be refused"
    assert message in str(result.problems[0])
    assert str(result.problems[0]).startswith(str(tmp_path))
    assert MAX_DEPTH < 200


def test_multi_document_json_list_kind_and_empty_documents(tmp_path: Path) -> None:
    as_json = '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}}'
    listed = """---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: ignored}
"""
    result = load([str(_write(tmp_path, as_json, "a.json")), str(_write(tmp_path, listed, "b.yaml"))], "prod")
    assert not result.problems
    assert sorted(r.key for r in result.resources) == [("Namespace", "", "shop"), ("Service", "prod", "a")]
    assert any("skipped ConfigMap" in note for note in result.notes)


def test_every_file_reports_all_its_problems_and_duplicates_are_refused(tmp_path: Path) -> None:
    first = _write(tmp_path, SERVICE, "one.yaml")
    second = _write(tmp_path, SERVICE + "---\napiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\n", "two.yaml")
    result = load([str(tmp_path)])
    messages = [str(p) for p in result.problems]
    assert any("invalid name 'Bad_Name'" in m and m.startswith(f"{second}:12") for m in messages)
    assert any(f"defined twice; first definition at {first}:1" in m for m in messages)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    (problem,) = load([str(tmp_path / "nope.yaml")]).problems
    assert "no such file or directory" in str(problem)


def _meshctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshctl", *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_cli_exits_65_without_traceback_on_bad_input(tmp_path: Path) -> None:
    bad = _write(tmp_path, b"\x00garbage\xff")
    for command in (["validate", "-f", str(bad)], ["translate", "-f", str(bad), "--proxy", "x.default"]):
        done = _meshctl(*command)
        assert done.returncode == 65, done.stderr
        assert "Traceback" not in done.stderr and f"{bad}:1: not a text file" in done.stderr


def test_cli_reads_stdin_and_exits_64_for_unknown_targets() -> None:
    done = _meshctl("translate", "-f", "-", "--proxy", "ghost.default", stdin=SERVICE)
    assert done.returncode == 64
    assert 'pod "ghost" not found in namespace "default"' in done.stderr
