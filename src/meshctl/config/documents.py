"""Split input files into YAML/JSON documents, remembering the line of every field.

Errors must name the file, the line and the field, so the reader keeps, per document, a map from
field path to line. Parsing goes through libyaml's composer (a node tree with positions) and a
small converter of our own, which also enforces the limits that keep hostile input harmless:
duplicate keys, alias expansion ("billion laughs"), nesting depth and non-text bytes all become
ordinary errors instead of hangs or tracebacks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshctl.config.paths import FieldPath

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_constructor = yaml.constructor.SafeConstructor()
_SCALARS = {
    "tag:yaml.org,2002:int": _constructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _constructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": _constructor.construct_yaml_bool,
}

MAX_DEPTH = 64
MAX_NODES = 2_000_000
YAML_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "<stdin>"


@dataclass(slots=True)
class Document:
    """One parsed document: its value, where it came from, and the line of each field path."""

    file: str
    line: int
    value: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int:
        """The line of the deepest known prefix of `path` (a missing field reports its parent)."""
        for cut in range(len(path), 0, -1):
            found = self.lines.get(path[:cut])
            if found is not None:
                return found
        return self.line


@dataclass(frozen=True, slots=True)
class ReadError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class _Limit(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Converter:
    """Turns a composed node tree into plain Python values, recording a line per field path."""

    def __init__(self) -> None:
        self.nodes = 0
        self.lines: dict[FieldPath, int] = {}

    def convert(self, node: yaml.Node, path: FieldPath, depth: int) -> Any:
        self.nodes += 1
        line = node.start_mark.line + 1
        if self.nodes > MAX_NODES:
            raise _Limit(line, "document is too large or contains excessive aliasing")
        if depth > MAX_DEPTH:
            raise _Limit(line, f"document is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Limit(key_node.start_mark.line + 1, "YAML merge keys (<<) are not supported")
                if not isinstance(key_node, yaml.ScalarNode):
                    raise _Limit(key_node.start_mark.line + 1, "mapping keys must be plain strings")
                key = str(key_node.value)
                if key in out:
                    raise _Limit(key_node.start_mark.line + 1, f"duplicate key {key!r}")
                child = (*path, key)
                self.lines[child] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, child, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = (*path, index)
                self.lines[child] = item.start_mark.line + 1
                items.append(self.convert(item, child, depth + 1))
            return items
        return _scalar(node, line)


def _scalar(node: yaml.ScalarNode, line: int) -> Any:
    tag = node.tag
    if tag in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"):
        return node.value
    if tag == "tag:yaml.org,2002:null":
        return None
    build = _SCALARS.get(tag)
    if build is not None:
        try:
            return build(node)
        except (ValueError, OverflowError, yaml.YAMLError) as exc:
            raise _Limit(line, f"bad scalar {node.value!r}: {exc}") from None
    raise _Limit(line, f"unsupported YAML tag {tag}")


def parse_text(text: str, file: str) -> tuple[list[Document], list[ReadError]]:
    """All documents of one file's text; empty documents are dropped."""
    docs: list[Document] = []
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            converter = _Converter()
            try:
                value = converter.convert(node, (), 0)
            except _Limit as exc:
                return docs, [ReadError(file, exc.line, exc.message)]
            if value is None:
                continue
            docs.append(Document(file, node.start_mark.line + 1, value, converter.lines))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        return docs, [ReadError(file, line, f"invalid YAML: {problem}")]
    except yaml.YAMLError as exc:
        return docs, [ReadError(file, 1, f"invalid YAML: {exc}")]
    except RecursionError:
        return docs, [ReadError(file, 1, f"document is nested deeper than {MAX_DEPTH} levels")]
    return docs, []


def decode(data: bytes, file: str) -> tuple[str | None, ReadError | None]:
    """Bytes to text, accepting UTF-8 (with or without BOM) and UTF-16 with a BOM."""
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, ReadError(file, 1, "not a text file (contains NUL bytes)")
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return data.decode(encoding), None
        except UnicodeDecodeError as exc:
            if encoding == "utf-8-sig" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
                line = data[: exc.start].count(b"\n") + 1
                return None, ReadError(file, line, "not UTF-8 text")
    return None, ReadError(file, 1, "not UTF-8 text")


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[ReadError]]:
    """Files named by the user: files as given, directories walked (sorted), `-` for stdin."""
    files: list[str] = []
    errors: list[ReadError] = []
    for item in inputs:
        if item == "-":
            files.append(STDIN)
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(
                str(p) for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()
            )
            files.extend(found)
        elif path.exists():
            files.append(item)
        else:
            errors.append(ReadError(item, 0, "no such file or directory"))
    return files, errors


def read_file(file: str) -> tuple[list[Document], list[ReadError]]:
    """Every document of one input file (or stdin)."""
    try:
        data = sys.stdin.buffer.read() if file == STDIN else Path(file).read_bytes()
    except OSError as exc:
        return [], [ReadError(file, 0, f"cannot read: {exc.strerror or exc}")]
    text, error = decode(data, file)
    if error is not None:
        return [], [error]
    assert text is not None
    return parse_text(text, file)


def iter_documents(inputs: list[str]) -> Iterator[tuple[list[Document], list[ReadError]]]:
    """Per input file: its documents and its read errors."""
    files, errors = expand_inputs(inputs)
    if errors:
        yield [], errors
    for file in files:
        yield read_file(file)
