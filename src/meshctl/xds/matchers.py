"""Envoy's node matchers (CSDS `node_matchers`), compiled once per request into bounded predicates.

A CSDS client chooses the proxies it asks about with `NodeMatcher`s: a StringMatcher on the node
id and StructMatchers on the node metadata. Whoever can reach the port writes them, so they are
held to what Envoy itself promises: regular expressions have RE2 semantics (linear time, no
backtracking; Envoy's `safe_regex`), matched with RE2 itself, and every part of a request is
bounded, so matching costs at most a fixed amount per proxy. A request beyond the bounds, or one
RE2 or this module cannot read, is refused with the reason (`MatcherError`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import re2
from envoy.config.core.v3 import base_pb2 as core_pb2
from envoy.type.matcher.v3 import node_pb2, number_pb2, string_pb2, struct_pb2, value_pb2
from google.protobuf import struct_pb2 as pb_struct

__all__ = [
    "MAX_DEPTH",
    "MAX_NODE_MATCHERS",
    "MAX_PATH",
    "MAX_PATTERN",
    "MAX_STRUCT_MATCHERS",
    "MatcherError",
    "NodePredicate",
    "RE2_MEMORY",
    "node_matchers",
    "string_matcher",
    "struct_matcher",
    "value_matcher",
]

# Beyond any real use, and small enough that matching every proxy stays cheap.
MAX_NODE_MATCHERS = 64
MAX_STRUCT_MATCHERS = 16
MAX_PATH = 16
MAX_DEPTH = 4
MAX_PATTERN = 1024
RE2_MEMORY = 1 << 20

NodePredicate = Callable[[core_pb2.Node, str], bool]
_Text = Callable[[str], bool]
_Value = Callable[["pb_struct.Value | None"], bool]


class MatcherError(ValueError):
    """A matcher that is refused: malformed, unsupported or beyond the bounds."""


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = RE2_MEMORY
    options.log_errors = False
    return options


def _bounded(text: str, what: str) -> str:
    if len(text.encode()) > MAX_PATTERN:
        raise MatcherError(f"{what} is longer than {MAX_PATTERN} bytes")
    return text


def string_matcher(matcher: string_pb2.StringMatcher) -> _Text:
    """A StringMatcher as a predicate; `ignore_case` applies to all but `safe_regex`, as in Envoy."""
    kind = matcher.WhichOneof("match_pattern")
    if kind == "safe_regex":
        pattern = _bounded(matcher.safe_regex.regex, "safe_regex.regex")
        try:
            compiled = re2.compile(pattern, options=_options())
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise MatcherError(f"safe_regex.regex {pattern!r} is not an RE2 expression: {reason}") from None
        return lambda value: compiled.fullmatch(value) is not None
    if kind not in ("exact", "prefix", "suffix", "contains"):
        raise MatcherError(f"string matcher {kind or '(none)'} is not supported (exact, prefix, suffix, contains, safe_regex)")
    pattern = _bounded(getattr(matcher, kind), kind)
    fold: Callable[[str], str] = str.lower if matcher.ignore_case else str
    pattern = fold(pattern)
    if kind == "exact":
        return lambda value: fold(value) == pattern
    if kind == "prefix":
        return lambda value: fold(value).startswith(pattern)
    if kind == "suffix":
        return lambda value: fold(value).endswith(pattern)
    return lambda value: pattern in fold(value)


def _kind(value: pb_struct.Value | None) -> str | None:
    return value.WhichOneof("kind") if value is not None else None


def value_matcher(matcher: value_pb2.ValueMatcher, depth: int = 0) -> _Value:
    """A ValueMatcher as a predicate on a metadata value (None where the path leads nowhere)."""
    if depth > MAX_DEPTH:
        raise MatcherError(f"value matchers are nested deeper than {MAX_DEPTH}")
    kind = matcher.WhichOneof("match_pattern")
    if kind == "null_match":
        return lambda value: _kind(value) == "null_value"
    if kind == "double_match":
        return _double(matcher.double_match)
    if kind == "string_match":
        text = string_matcher(matcher.string_match)
        return lambda value: value is not None and _kind(value) == "string_value" and text(value.string_value)
    if kind == "bool_match":
        wanted = matcher.bool_match
        return lambda value: value is not None and _kind(value) == "bool_value" and value.bool_value == wanted
    if kind == "present_match":
        present = matcher.present_match
        return lambda value: (_kind(value) is not None) == present
    if kind == "list_match":
        element = value_matcher(matcher.list_match.one_of, depth + 1)
        return lambda value: (value is not None and _kind(value) == "list_value"
                              and any(element(item) for item in value.list_value.values))
    if kind == "or_match":
        options = [value_matcher(m, depth + 1) for m in _limited(matcher.or_match.value_matchers, "or_match")]
        return lambda value: any(option(value) for option in options)
    raise MatcherError(f"value matcher {kind or '(none)'} is not supported")


def _double(matcher: number_pb2.DoubleMatcher) -> _Value:
    kind = matcher.WhichOneof("match_pattern")
    if kind == "exact":
        exact = matcher.exact
        return lambda value: value is not None and _kind(value) == "number_value" and value.number_value == exact
    if kind == "range":
        start, end = matcher.range.start, matcher.range.end
        return lambda value: value is not None and _kind(value) == "number_value" and start <= value.number_value < end
    raise MatcherError("double matcher needs exact or range")


def _limited(items: Sequence[value_pb2.ValueMatcher], what: str) -> Sequence[value_pb2.ValueMatcher]:
    if len(items) > MAX_STRUCT_MATCHERS:
        raise MatcherError(f"{what} has more than {MAX_STRUCT_MATCHERS} matchers")
    return items


def struct_matcher(matcher: struct_pb2.StructMatcher) -> Callable[[pb_struct.Struct], bool]:
    """A StructMatcher: the value at `path` (keys into nested structs) matches `value`."""
    if not matcher.path:
        raise MatcherError("a node_metadatas matcher needs a path")
    if len(matcher.path) > MAX_PATH:
        raise MatcherError(f"a node_metadatas path is longer than {MAX_PATH} keys")
    keys = [_bounded(segment.key, "path key") for segment in matcher.path]
    value = value_matcher(matcher.value)

    def match(metadata: pb_struct.Struct) -> bool:
        found: pb_struct.Value | None = None
        current: pb_struct.Struct | None = metadata
        for key in keys:
            if current is None or key not in current.fields:
                return value(None)
            found = current.fields[key]
            current = found.struct_value if _kind(found) == "struct_value" else None
        return value(found)

    return match


def node_matchers(matchers: Sequence[node_pb2.NodeMatcher]) -> NodePredicate:
    """CSDS `node_matchers`: a node is chosen by any of them (none: every node); within one, its
    id (the node's own or the proxy key, `POD.NS`) and every metadata matcher must match."""
    if len(matchers) > MAX_NODE_MATCHERS:
        raise MatcherError(f"more than {MAX_NODE_MATCHERS} node_matchers")
    compiled: list[tuple[_Text | None, list[Callable[[pb_struct.Struct], bool]]]] = []
    for matcher in matchers:
        if len(matcher.node_metadatas) > MAX_STRUCT_MATCHERS:
            raise MatcherError(f"a node matcher has more than {MAX_STRUCT_MATCHERS} node_metadatas")
        node_id = string_matcher(matcher.node_id) if matcher.HasField("node_id") else None
        compiled.append((node_id, [struct_matcher(m) for m in matcher.node_metadatas]))

    def chosen(node: core_pb2.Node, key: str) -> bool:
        if not compiled:
            return True
        return any(
            (node_id is None or node_id(node.id) or node_id(key)) and all(m(node.metadata) for m in metadata)
            for node_id, metadata in compiled
        )

    return chosen
