"""Split input files into YAML/JSON documents, remembering the line of every field.

Errors must name the file, the line and the field, so the reader keeps, per document, a map from
field path to line. Parsing goes through libyaml's composer (a node tree with positions) and a
small converter of our own, which also enforces the limits that keep hostile input harmless:
duplicate keys, alias expansion ("billion laughs"), nesting depth, non-text bytes, numbers no
field can hold and YAML tags (`!!python/object`, `!custom`) all become ordinary errors instead of
hangs, tracebacks or silently dropped meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshctl.config.files import STDIN, UnreadableFile, read_bytes, walk
from meshctl.config.paths import FieldPath, format_path
from meshctl.config.values import shown

__all__ = [
    "Document",
    "MAX_ALIASED_NODES",
    "MAX_DEPTH",
    "MAX_NODES",
    "ReadError",
    "decode",
    "expand_inputs",
    "parse_text",
    "read_file",
]

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The safe loader (libyaml's parser and composer when PyYAML has them), with the tag of
    each plain scalar remembered: the composer asks for it for every scalar, the answer is a
    chain of regular expressions in Python, and a file repeats the same few hundred words
    (`name`, `namespace`, `8080`) thousands of times. The tag of a plain scalar depends on its
    text alone (no path resolvers are registered: `yaml_path_resolvers` is empty)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._plain_tags: dict[str, str] = {}

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode or not implicit[0] or self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        tag = self._plain_tags.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(value) <= _REMEMBERED_LENGTH:
                self._plain_tags[value] = tag
        return tag


_REMEMBERED_LENGTH = 256
"""Longest plain scalar whose tag is remembered (longer ones are rarely repeated)."""
_constructor = yaml.constructor.SafeConstructor()
_SCALARS = {
    "tag:yaml.org,2002:int": _constructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _constructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": _constructor.construct_yaml_bool,
}

# Tags a document may carry: the YAML core schema, which every YAML library reads alike. Any
# other tag (`!!python/object`, `!!set`, `!Ref`) asks for a meaning Kubernetes would not give it.
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
_TEXT_TAGS = frozenset({"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"})
_SCALAR_TAGS = _TEXT_TAGS | set(_SCALARS) | {"tag:yaml.org,2002:null"}
_YAML_TAG_PREFIX = "tag:yaml.org,2002:"

MAX_DEPTH = 64
MAX_NODES = 2_000_000
MAX_ALIASED_NODES = 10_000
"""Nodes an anchor's aliases may add to a document. Shared blocks of config (`*defaults`) stay
far below it; a "billion laughs" document reaches it after a few microseconds of work."""
_MAX_INT_DIGITS = 4300  # Python's own limit for converting digits to an int


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
    """Turns a composed node tree into plain Python values, recording a line per field path.

    The composer resolves an alias to the very node its anchor names, so a node met a second
    time is being reached through an alias: those repeats are what "billion laughs" multiplies,
    so they are counted and bounded on their own. Inside an expanded alias every line (of
    fields, of errors) is the line of the alias, where the user wrote the reference.
    """

    def __init__(self) -> None:
        self.nodes = 0
        self.aliased = 0
        self.seen: set[int] = set()
        self.lines: dict[FieldPath, int] = {}

    def convert(self, node: yaml.Node, path: FieldPath, depth: int, ref_line: int, alias_line: int = 0) -> Any:
        """`ref_line` is the line that refers to `node`; `alias_line` that of the alias being expanded."""
        self.nodes += 1
        if id(node) in self.seen:
            alias_line = alias_line or ref_line
            self.aliased += 1
            if self.aliased > MAX_ALIASED_NODES:
                raise _Limit(alias_line, f"YAML aliases expand to more than {MAX_ALIASED_NODES:,} values; "
                                         "refusing to expand them further (write the values out)")
        else:
            self.seen.add(id(node))
        line = alias_line or node.start_mark.line + 1
        if self.nodes > MAX_NODES:
            raise _Limit(line, f"document is too large (more than {MAX_NODES:,} values)")
        if depth > MAX_DEPTH:
            raise _Limit(line, f"document is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node, path, line)
        if node.tag not in _COLLECTION_TAGS:
            raise _Limit(line, f"{_where(path)}unsupported YAML tag {_tag_name(node.tag)}")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key_line = alias_line or key_node.start_mark.line + 1
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Limit(key_line, "YAML merge keys (<<) are not supported")
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                    raise _Limit(key_line, f"{_where(path)}mapping keys must be plain strings")
                key = str(key_node.value)
                if key in out:
                    raise _Limit(key_line, f"duplicate key {shown(key)}")
                child = (*path, key)
                self.lines[child] = key_line
                out[key] = self.convert(value_node, child, depth + 1, key_line, alias_line)
            return out
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            item_line = line if alias_line or id(item) in self.seen else item.start_mark.line + 1
            self.lines[child] = item_line
            items.append(self.convert(item, child, depth + 1, item_line, alias_line))
        return items


def _scalar(node: yaml.ScalarNode, path: FieldPath, line: int) -> Any:
    tag = node.tag
    if tag in _TEXT_TAGS:
        return node.value
    if tag == "tag:yaml.org,2002:null":
        return None
    build = _SCALARS.get(tag)
    if build is None:
        raise _Limit(line, f"{_where(path)}unsupported YAML tag {_tag_name(tag)}")
    if tag == "tag:yaml.org,2002:int" and sum(c.isdigit() for c in node.value) > _MAX_INT_DIGITS:
        raise _Limit(line, f"{_where(path)}number {shown(node.value)} is out of range for any field")
    try:
        return build(node)
    except (ValueError, OverflowError, yaml.YAMLError):
        raise _Limit(line, f"{_where(path)}invalid {tag.removeprefix(_YAML_TAG_PREFIX)} {shown(node.value)}") from None


def _where(path: FieldPath) -> str:
    return f"{format_path(path)}: " if path else ""


def _tag_name(tag: str) -> str:
    """A tag as it was written: `!!python/object:x` rather than `tag:yaml.org,2002:python/object:x`."""
    return "!!" + tag.removeprefix(_YAML_TAG_PREFIX) if tag.startswith(_YAML_TAG_PREFIX) else tag


def parse_text(text: str, file: str) -> tuple[list[Document], list[ReadError]]:
    """All documents of one file's text; empty documents are dropped."""
    docs: list[Document] = []
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            converter = _Converter()
            try:
                value = converter.convert(node, (), 0, node.start_mark.line + 1)
            except _Limit as exc:
                return docs, [ReadError(file, exc.line, exc.message)]
            if value is None:
                continue
            docs.append(Document(file, node.start_mark.line + 1, value, converter.lines))
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        what = "not a text file (contains NUL bytes)" if exc.character == 0 else \
            f"invalid YAML: control character #x{exc.character:02x} is not allowed"
        return docs, [ReadError(file, line, what)]
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
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    nul = -1 if utf16 else data.find(b"\x00")
    if nul >= 0:
        return None, ReadError(file, data.count(b"\n", 0, nul) + 1, "not a text file (contains NUL bytes)")
    try:
        return data.decode("utf-16" if utf16 else "utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = 1 if utf16 else data.count(b"\n", 0, exc.start) + 1
        return None, ReadError(file, line, "not UTF-16 text" if utf16 else "not UTF-8 text")


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[ReadError]]:
    """Files named by the user: files as given, directories walked (see `files.walk`), `-` for
    stdin. A directory, or part of one, that cannot be listed is an error, not an empty set."""
    files: list[str] = []
    errors: list[ReadError] = []
    for item in inputs:
        if item == "-":
            files.append(STDIN)
            continue
        path = Path(item)
        if path.is_dir():
            try:
                listing = walk(path)
            except OSError as exc:
                errors.append(ReadError(item, 0, f"cannot read directory: {exc.strerror or exc}"))
                continue
            files.extend(listing.files)
            errors.extend(ReadError(directory, 0, f"cannot read directory: {reason}")
                          for directory, reason in listing.unreadable)
        elif path.exists() or path.is_symlink():
            files.append(item)
        else:
            errors.append(ReadError(item, 0, "no such file or directory"))
    return files, errors


def read_file(file: str) -> tuple[list[Document], list[ReadError]]:
    """Every document of one input file (or stdin)."""
    try:
        data = read_bytes(file)
    except UnreadableFile as exc:
        return [], [ReadError(file, 0, str(exc))]
    text, error = decode(data, file)
    if error is not None:
        return [], [error]
    assert text is not None
    return parse_text(text, file)
