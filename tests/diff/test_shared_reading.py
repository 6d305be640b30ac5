"""diff reads both sides as one (`meshctl.diff.reading`): whatever the edit, each side is what
reading its files alone gives, resource for resource (origins, field lines, content), and its
problems are the same messages."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FUZZ, examples

from meshctl.config.loader import LoadResult, load_data, merge
from meshctl.diff.inputs import InputFile, Side, load_sides
from meshctl.errors import BadInputError

KITCHEN_SINK = (Path(__file__).resolve().parents[1] / "generate" / "data" / "kitchen-sink.yaml").read_text()
DOCUMENTS = KITCHEN_SINK.split("\n---\n")


def _facts(result: LoadResult) -> list[tuple[Any, ...]]:
    return [(r.key, r.origin, r.revision, dict(r.lines), r.api_version, r.created, r.view) for r in result.resources]


def _alone(files: list[tuple[str, str]]) -> LoadResult:
    return merge([load_data(text.encode(), name, "default") for name, text in files])


def _side(label: str, files: list[tuple[str, str]]) -> Side:
    return Side(label, tuple(InputFile(name, text.encode()) for name, text in files))


def _assert_read_as_alone(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> None:
    expected = _alone(old), _alone(new)
    problems = [str(p) for result in expected for p in result.problems]
    if problems:
        with pytest.raises(BadInputError) as raised:
            load_sides(_side("old", old), _side("new", new), "default")
        assert raised.value.problems == list(dict.fromkeys(problems))
        return
    got = load_sides(_side("old", old), _side("new", new), "default")
    assert [_facts(r) for r in got] == [_facts(r) for r in expected]


def _edit(rnd: random.Random, documents: list[str]) -> None:
    index = rnd.randrange(len(documents))
    what = rnd.choice(["lines", "value", "drop", "copy", "swap", "comment", "broken", "end", "crlf", "skipped", "separator"])
    if what == "lines":  # every later document moves down
        documents[index] = "# a note\n\n" + documents[index]
    elif what == "value":
        documents[index] = documents[index].replace("shop", "other", 1)
    elif what == "drop" and len(documents) > 1:
        del documents[index]
    elif what == "copy":  # the same text twice: defined twice
        documents.insert(rnd.randrange(len(documents)), documents[index])
    elif what == "swap":
        other = rnd.randrange(len(documents))
        documents[index], documents[other] = documents[other], documents[index]
    elif what == "comment":
        documents.insert(index, "# only a comment")
    elif what == "broken":
        documents[index] += "\nspec: [unclosed"
    elif what == "end":  # `...` ends a document: the file is read whole
        documents[index] += "\n..."
    elif what == "crlf":
        documents[index] = documents[index].replace("\n", "\r\n")
    elif what == "skipped":  # a kind meshctl does not read: a note
        documents.insert(index, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}")
    elif what == "separator":  # a separator inside a quoted scalar: invalid YAML
        documents[index] += "\nmetadata2: 'a\n---\nb'"


@settings(FUZZ, max_examples=examples(40))
@given(seed=st.integers(0, 2**32 - 1), old_edits=st.integers(0, 2), new_edits=st.integers(1, 3),
       layout=st.sampled_from(["one file", "two files", "renamed"]))
def test_each_side_reads_as_its_files_alone(seed: int, old_edits: int, new_edits: int, layout: str) -> None:
    rnd = random.Random(seed)
    before = list(DOCUMENTS)
    for _ in range(old_edits):
        _edit(rnd, before)
    after = list(before)
    for _ in range(new_edits):
        _edit(rnd, after)
    old_text, new_text = "\n---\n".join(before), "\n---\n".join(after)
    if layout == "one file":
        _assert_read_as_alone([("old/mesh.yaml", old_text)], [("new/mesh.yaml", new_text)])
    elif layout == "renamed":
        _assert_read_as_alone([("mesh.yaml", old_text)], [("moved.yaml", new_text)])
    else:  # a document moved to another file, the other file as it was
        half = len(after) // 2
        _assert_read_as_alone([("a.yaml", old_text), ("b.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}")],
                              [("a.yaml", "\n---\n".join(after[:half])), ("b.yaml", "\n---\n".join(after[half:]))])


def test_a_one_document_edit_parses_that_document_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of it: of a changed file, only the changed document is parsed again."""
    from meshctl.diff import reading

    parsed: list[bytes] = []

    def counting(data: bytes, name: str, namespace: str) -> Any:
        parsed.append(data)
        return load_data(data, name, namespace)

    monkeypatch.setattr(reading, "load_data", counting)
    after = list(DOCUMENTS)
    index = next(i for i, text in enumerate(after) if "http-web" in text)
    after[index] = after[index].replace("http-web", "http-site")
    old, new = load_sides(_side("old", [("m.yaml", "\n---\n".join(DOCUMENTS))]),
                          _side("new", [("m.yaml", "\n---\n".join(after))]), "default")
    assert len(parsed) == 2 and parsed[1].lstrip(b"\n").startswith(b"---\n" + after[index].encode())
    assert [_facts(r) for r in (old, new)] == [_facts(_alone([("m.yaml", "\n---\n".join(d))])) for d in (DOCUMENTS, after)]
