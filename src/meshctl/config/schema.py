"""A small declarative schema language for the resources meshctl reads.

Kubernetes validates Istio resources with structural OpenAPI schemas plus the webhook's semantic
rules, and the API server in strict mode refuses unknown fields. meshctl has no API server, so each
kind declares its fields here; `Obj.check` walks a document once, reporting wrong types, unknown
fields, missing required fields and violated one-of groups, then runs the semantic rules attached
to each message type (`rules=`), so a rule sits next to the fields it constrains.

A rule is `fn(value, path, report)`; `report(path, message)` records a problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from meshctl.config.paths import FieldPath
from meshctl.config.values import shown

__all__ = [
    "Bool",
    "Enum",
    "Float",
    "Free",
    "FreeObject",
    "Int",
    "List",
    "Map",
    "Obj",
    "Report",
    "Rule",
    "Str",
    "Type",
    "UINT32_MAX",
    "UINT64_MAX",
]

Report = Callable[[FieldPath, str], None]
Rule = Callable[[Any, FieldPath, Report], None]


class Type:
    """A field type. `describe` names it in messages: "expected <describe>, got <type>".

    Subclasses implement `_check` (shape); `rules` (meaning) run only when the shape was clean, so
    a rule may read the value without defending against wrong types.
    """

    describe = "a value"
    rules: tuple[Rule, ...] = ()

    def check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not self.rules:
            self._check(value, path, report)
            return
        problems = 0

        def counting(where: FieldPath, message: str) -> None:
            nonlocal problems
            problems += 1
            report(where, message)

        self._check(value, path, counting)
        if problems == 0:
            for rule in self.rules:
                rule(value, path, report)

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        raise NotImplementedError


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _wrong(report: Report, path: FieldPath, expected: str, value: Any) -> None:
    report(path, f"expected {expected}, got {_kind_of(value)}")


class Str(Type):
    describe = "a string"

    def __init__(self, *, pattern: str | None = None, hint: str = "", min_len: int = 0,
                 rules: Iterable[Rule] = ()) -> None:
        self.pattern = re.compile(pattern) if pattern else None
        self.hint = hint
        self.min_len = min_len
        self.rules = tuple(rules)

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not isinstance(value, str):
            _wrong(report, path, self.describe, value)
            return
        if len(value) < self.min_len:
            report(path, "must not be empty")
            return
        if self.pattern is not None and not self.pattern.fullmatch(value):
            report(path, f"invalid value {shown(value)}{': ' + self.hint if self.hint else ''}")


class Bool(Type):
    describe = "a boolean"

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not isinstance(value, bool):
            _wrong(report, path, self.describe, value)


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
UINT32_MAX = 2**32 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1


class Int(Type):
    """An integer within [low, high]. Every integer is bounded: without bounds it is an int64,
    the widest integer of the Istio and Kubernetes APIs; fields that become a narrower Envoy
    field (uint32, int32) say so, so that a value Envoy cannot hold is refused here rather than
    crashing the translation or being NACKed."""

    _MAX_DIGITS = 40  # longer digit strings are out of every range: no need to convert them

    def __init__(self, low: int | None = None, high: int | None = None, *,
                 accept_string: bool = False) -> None:
        self.low = INT64_MIN if low is None else low
        self.high = INT64_MAX if high is None else high
        self.accept_string = accept_string
        self.describe = "an integer"

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if self.accept_string and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            if len(value) > self._MAX_DIGITS:
                report(path, f"must be <= {self.high}, got {shown(value)}")
                return
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            _wrong(report, path, self.describe, value)
            return
        if value < self.low:
            report(path, f"must be >= {self.low}, got {shown(value)}")
        elif value > self.high:
            report(path, f"must be <= {self.high}, got {shown(value)}")


class Float(Type):
    """A finite number (a protobuf double) within optional bounds."""

    describe = "a number"

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        self.low = low
        self.high = high

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _wrong(report, path, self.describe, value)
            return
        if isinstance(value, int) and abs(value) > 2**1023:
            report(path, f"must be a finite number, got {shown(value)}")
        elif isinstance(value, float) and not math.isfinite(value):
            report(path, f"must be a finite number, got {value}")
        elif self.low is not None and value < self.low:
            report(path, f"must be >= {self.low:g}, got {value:g}")
        elif self.high is not None and value > self.high:
            report(path, f"must be <= {self.high:g}, got {value:g}")


class Enum(Type):
    def __init__(self, *values: str) -> None:
        self.values = values
        self.describe = "one of " + ", ".join(values)

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not isinstance(value, str) or value not in self.values:
            quoted = shown(value) if isinstance(value, str) else _kind_of(value)
            report(path, f"invalid value {quoted}: must be one of {', '.join(self.values)}")


class Free(Type):
    """Anything (google.protobuf.Struct, or parts of Kubernetes objects meshctl does not read)."""

    describe = "any value"

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        return


class FreeObject(Type):
    describe = "an object"

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not isinstance(value, dict):
            _wrong(report, path, self.describe, value)


class List(Type):
    def __init__(self, item: Type, *, min_items: int = 0, unique: bool = False,
                 rules: Iterable[Rule] = ()) -> None:
        self.item = item
        self.rules = tuple(rules)
        self.min_items = min_items
        self.unique = unique
        self.describe = "a list"

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not isinstance(value, list):
            _wrong(report, path, self.describe, value)
            return
        if len(value) < self.min_items:
            report(path, f"must have at least {self.min_items} item(s)")
        seen: set[Any] = set()
        for index, item in enumerate(value):
            self.item.check(item, (*path, index), report)
            if self.unique and isinstance(item, (str, int)):
                if item in seen:
                    report((*path, index), f"duplicate value {shown(item)}")
                seen.add(item)


class Map(Type):
    """A map with string keys; `key` optionally validates the keys."""

    def __init__(self, value: Type, *, key: Str | None = None, rules: Iterable[Rule] = ()) -> None:
        self.value = value
        self.rules = tuple(rules)
        self.key = key
        self.describe = "an object"

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not isinstance(value, dict):
            _wrong(report, path, self.describe, value)
            return
        for key, item in value.items():
            if self.key is not None:
                self.key.check(key, (*path, key), report)
            self.value.check(item, (*path, key), report)


class Obj(Type):
    """A message with known fields.

    `required` fields must be present and non-empty; in each `oneof` group at most one field may
    be set (`exactly_one` groups need exactly one); `rules` run after the fields checked clean
    enough to be read (every rule can rely on the field types).
    """

    describe = "an object"

    def __init__(
        self,
        fields: Mapping[str, Type],
        *,
        required: Iterable[str] = (),
        oneof: Iterable[tuple[str, ...]] = (),
        exactly_one: Iterable[tuple[str, ...]] = (),
        rules: Iterable[Rule] = (),
        open: bool = False,
    ) -> None:
        self.fields = dict(fields)
        self.required = tuple(required)
        self.oneof = tuple(oneof)
        self.exactly_one = tuple(exactly_one)
        self.rules = tuple(rules)
        self.open = open

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not isinstance(value, dict):
            _wrong(report, path, self.describe, value)
            return
        for key, item in value.items():
            field_type = self.fields.get(key)
            if field_type is None:
                if not self.open:
                    report((*path, key), f"unknown field {shown(key)}{_suggest(key, self.fields)}")
                continue
            if item is None:
                continue
            field_type.check(item, (*path, key), report)
        for name in self.required:
            if _empty(value.get(name)):
                report((*path, name), "required field is missing")
        for group in self.oneof:
            present = [name for name in group if not _empty(value.get(name))]
            if len(present) > 1:
                report((*path, present[1]), f"only one of {', '.join(group)} may be set")
        for group in self.exactly_one:
            present = [name for name in group if not _empty(value.get(name))]
            if len(present) != 1:
                where = (*path, present[1]) if len(present) > 1 else path
                report(where, f"exactly one of {', '.join(group)} must be set")

    def extend(self, fields: Mapping[str, Type] = {}, **changes: Any) -> Obj:
        """A copy with more fields or other options (API versions that differ slightly)."""
        merged = Obj(
            {**self.fields, **fields},
            required=changes.get("required", self.required),
            oneof=changes.get("oneof", self.oneof),
            exactly_one=changes.get("exactly_one", self.exactly_one),
            rules=changes.get("rules", self.rules),
            open=changes.get("open", self.open),
        )
        return merged


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _suggest(key: str, known: Mapping[str, Type]) -> str:
    lowered = key.lower().replace("_", "").replace("-", "")
    for name in known:
        if name.lower() == lowered:
            return f" (did you mean {name!r}?)"
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
