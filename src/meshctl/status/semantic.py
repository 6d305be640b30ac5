"""`proxy-status POD --semantic`: the diff users asked istioctl for, by resource and by field.

istioctl's text diff compares two long JSON documents line by line, so one reordered list or
one extra cluster shifts everything after it, and the reader has to work out which resource a
hunk belongs to. Here both sides are normalised exactly as for that diff, as JSON data in
Envoy's own form (`sections`: field names as in Envoy's docs and dumps, `connect_timeout`),
split into resources keyed by name, and each resource present on both sides is compared as a
tree with DeepDiff, ignoring the order of lists. A resource whose JSON differs is first read
through its protobuf type on both sides (`Side.typed`), so that spellings of one value (`100`
and `100.0` in a double, `"5"` and `5` in an int64, `"1.000s"` and `"1s"`, a dump saved as YAML)
are no difference, while presence stays protobuf's (a route's `timeout: 0s` is not an absent
timeout: it turns Envoy's 15 s default off). What remains is a list of resources only the
control plane has, resources only Envoy has, and, for the others, the paths of the fields that
differ with both values.

Order is ignored only where Envoy ignores it. Routes in a virtual host, HTTP filters, network
filters and listener filters run in list order, so reordering them changes behaviour: those
lists are compared position by position (as maps from index to item, which also keeps DeepDiff
from hiding their order inside an unordered parent), after lining up the items both sides
hold, so that one filter inserted reads as `http_filters[1]: (absent) -> {...}` rather than as
every filter after it changing. Lists of uniquely named items (virtual hosts, for instance) are
compared by name, so paths read `virtual_hosts["web:80"].routes[1]` instead of naming a
position in a list whose order does not matter; in other lists of objects (filter chains) the
items both sides hold drop out whatever their order, and the rest pair up in the order they
come, so that a change inside a chain reads as a path into it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshctl.errors import MeshctlError
from meshctl.status.envoyjson import Unconvertible
from meshctl.status.sections import KINDS, Side, entry_name

__all__ = [
    "ABSENT",
    "FieldChange",
    "KindReport",
    "ORDERED_LISTS",
    "field_changes",
    "report_data",
    "report_text",
    "semantic_diff",
    "show",
]


class _Absent:
    """The value of a field on the side that does not have it."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()
_VALUE_WIDTH = 72
# Lists whose order Envoy acts on (compared position by position).
ORDERED_LISTS = frozenset({"routes", "http_filters", "filters", "listener_filters"})
_ADDED = {"dictionary_item_added", "iterable_item_added", "attribute_added", "set_item_added"}
_REMOVED = {"dictionary_item_removed", "iterable_item_removed", "attribute_removed", "set_item_removed"}


@dataclass(frozen=True, slots=True)
class FieldChange:
    """A field of one resource that differs, with its value before (the control plane's, or the
    old side of `meshctl diff`) and after (Envoy's, or the new side); a side without the field
    holds ABSENT."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class KindReport:
    """One kind's resources compared by name. `error` is set when a side holds a type this
    process cannot read."""

    kind: str
    only_control_plane: tuple[str, ...] = ()
    only_envoy: tuple[str, ...] = ()
    changed: tuple[tuple[str, tuple[FieldChange, ...]], ...] = ()
    error: str = ""

    @property
    def matches(self) -> bool:
        return not (self.only_control_plane or self.only_envoy or self.changed or self.error)

    @property
    def summary(self) -> str:
        counts = [
            (len(self.changed), "changed"),
            (len(self.only_envoy), "only in Envoy"),
            (len(self.only_control_plane), "only in the control plane"),
        ]
        return ", ".join(f"{count} {what}" for count, what in counts if count)


def semantic_diff(control_plane: Side, envoy: Side) -> list[KindReport]:
    """Clusters, listeners and routes of the two dumps, compared resource by resource."""
    return [_compare_kind(kind, control_plane, envoy) for kind in KINDS]


def report_text(reports: Sequence[KindReport]) -> str:
    """`X Match`, or `X Don't Match (counts)` with one block per differing resource:
    `~ name` and its field paths (`path: control plane value -> Envoy value`), `+ name` for a
    resource only Envoy holds, `- name` for one only the control plane would send."""
    out = []
    for report in reports:
        if report.matches:
            out.append(f"{report.kind} Match\n")
            continue
        if report.error:
            out.append(f"{report.kind} Don't Match: {report.error}\n")
            continue
        out.append(f"{report.kind} Don't Match ({report.summary})\n")
        for name, changes in report.changed:
            out.append(f"  ~ {name}\n")
            out.extend(f"      {c.path}: {show(c.before)} -> {show(c.after)}\n" for c in changes)
        out.extend(f"  + {name} (only in Envoy)\n" for name in report.only_envoy)
        out.extend(f"  - {name} (only in the control plane)\n" for name in report.only_control_plane)
    return "".join(out)


def report_data(reports: Sequence[KindReport]) -> dict[str, Any]:
    """The reports as JSON-ready data for `-o json` / `-o yaml`, keyed by lower-case kind."""
    data: dict[str, Any] = {}
    for report in reports:
        entry: dict[str, Any] = {"match": report.matches}
        if report.error:
            entry["error"] = report.error
        entry["onlyInControlPlane"] = list(report.only_control_plane)
        entry["onlyInEnvoy"] = list(report.only_envoy)
        entry["changed"] = {name: [_change_data(change) for change in changes] for name, changes in report.changed}
        data[report.kind.lower()] = entry
    return data


def _compare_kind(kind: str, control_plane: Side, envoy: Side) -> KindReport:
    try:
        expected = _by_name(kind, _entries(control_plane, kind))
        actual = _by_name(kind, _entries(envoy, kind))
    except Unconvertible as exc:
        return KindReport(kind, error=str(exc))
    changed = []
    for name in sorted(expected.keys() & actual.keys()):
        if expected[name] == actual[name]:
            continue
        before, after = control_plane.typed(kind, expected[name]), envoy.typed(kind, actual[name])
        if before != after:
            changed.append((name, tuple(field_changes(before, after))))
    return KindReport(
        kind,
        only_control_plane=tuple(sorted(expected.keys() - actual.keys())),
        only_envoy=tuple(sorted(actual.keys() - expected.keys())),
        changed=tuple((name, changes) for name, changes in changed if changes),
    )


def _entries(side: Side, kind: str) -> list[dict[str, Any]]:
    """A dump without the kind's section holds none of its resources (Envoy leaves the routes
    section out once no listener uses RDS)."""
    try:
        return side.entries(kind)
    except MeshctlError:
        return []


def _by_name(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {entry_name(kind, entry): entry for entry in entries}


class _Ordered(dict):  # type: ignore[type-arg]
    """A list whose order matters, as a map from position to item."""


class _Named(dict):  # type: ignore[type-arg]
    """A list of uniquely named items, as a map from name to item."""


class _Name(str):
    """The name of an item of a `_Named` list, so a path shows it in brackets."""

    __slots__ = ()


class _Was:
    """The position of an item an ordered list no longer holds: a key apart from the positions
    of the items it holds now (`_aligned`), shown as `[N]` all the same."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Was) and other.index == self.index

    def __hash__(self) -> int:
        return hash((_Was, self.index))

    def __repr__(self) -> str:
        return str(self.index)


def field_changes(before: Any, after: Any) -> list[FieldChange]:
    """The fields of one resource (as JSON data in Envoy's form) that differ, by path, sorted."""
    from deepdiff import DeepDiff

    changes = []
    shaped_before, shaped_after = _shaped_pair(before, after)
    for report_type, levels in DeepDiff(shaped_before, shaped_after, ignore_order=True, view="tree", threshold_to_diff_deeper=0).items():
        for level in levels:
            path = _path(level.path(output_format="list"))
            old_value = ABSENT if report_type in _ADDED else _unshaped(level.t1)
            new_value = ABSENT if report_type in _REMOVED else _unshaped(level.t2)
            changes.append(FieldChange(path, old_value, new_value))
    return sorted(changes, key=lambda change: change.path)


def _shaped(value: Any, key: str = "") -> Any:
    """JSON data with ordered lists and named lists turned into maps (module docstring)."""
    if isinstance(value, dict):
        return {name: _shaped(item, name) for name, item in value.items()}
    top = _top(value, key)
    if isinstance(top, _Ordered | _Named):
        return type(top)((name, _shaped(item)) for name, item in top.items())
    if isinstance(top, list):
        return [_shaped(item) for item in top]
    return top


def _shaped_pair(before: Any, after: Any, key: str = "") -> tuple[Any, Any]:
    """`_shaped` of both trees without the entries they share (map keys, named or ordered list
    items): DeepDiff then walks only what differs, which for one changed host among a thousand
    is a thousand times less, and the equal parts are never shaped at all."""
    one, other = _top(before, key), _top(after, key)
    if isinstance(before, list) and isinstance(after, list):
        if key in ORDERED_LISTS:
            one, other = _aligned(before, after)
        elif type(one) is list and type(other) is list and all(isinstance(item, dict) for item in before + after):
            one, other = _paired(before, after)
    if not (isinstance(one, dict) and isinstance(other, dict) and type(one) is type(other)):
        return _shaped(before, key), _shaped(after, key)
    kept_one, kept_other = type(one)(), type(other)()
    for name in one.keys() | other.keys():
        child = name if type(one) is dict else ""
        if name in one and name in other:
            if one[name] != other[name]:
                kept_one[name], kept_other[name] = _shaped_pair(one[name], other[name], child)
        elif name in one:
            kept_one[name] = _shaped(one[name], child)
        else:
            kept_other[name] = _shaped(other[name], child)
    return kept_one, kept_other


def _aligned(before: list[Any], after: list[Any]) -> tuple[_Ordered, _Ordered]:
    """Two versions of an ordered list as maps whose keys line up the items that stayed, so that
    one item inserted or removed reads as that item, not as a change of every item after it:
    an item kept, or changed in its place, under its position after; an item removed under its
    position before (`_Was`)."""
    from difflib import SequenceMatcher

    marks_before, marks_after = ([json.dumps(item, sort_keys=True) for item in items] for items in (before, after))
    kept_before, kept_after = _Ordered(), _Ordered()
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, marks_before, marks_after, autojunk=False).get_opcodes():
        paired = i2 - i1 if tag == "equal" else min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for offset in range(paired):
            kept_before[j1 + offset], kept_after[j1 + offset] = before[i1 + offset], after[j1 + offset]
        for index in range(i1 + paired, i2):
            kept_before[_Was(index)] = before[index]
        for index in range(j1 + paired, j2):
            kept_after[index] = after[index]
    return kept_before, kept_after


def _paired(before: list[Any], after: list[Any]) -> tuple[_Ordered, _Ordered]:
    """Two versions of a list whose order does not matter and whose items have no names (filter
    chains) as maps that pair each changed item with its counterpart, so that a field changed
    inside one reads as that field: items alike on both sides drop out whatever their order,
    the others pair in the order they come (under their position after); what is left over was
    removed (`_Was`) or added."""
    marks = [[json.dumps(item, sort_keys=True) for item in items] for items in (before, after)]
    left: list[list[int]] = []
    for mine, theirs in ((marks[0], marks[1]), (marks[1], marks[0])):
        counts = Counter(theirs)
        left.append([])
        for index, mark in enumerate(mine):
            if counts[mark]:
                counts[mark] -= 1
            else:
                left[-1].append(index)
    kept_before, kept_after = _Ordered(), _Ordered()
    for i, j in zip(*left, strict=False):
        kept_before[j], kept_after[j] = before[i], after[j]
    for i in left[0][len(left[1]):]:
        kept_before[_Was(i)] = before[i]
    for j in left[1][len(left[0]):]:
        kept_after[j] = after[j]
    return kept_before, kept_after


def _top(value: Any, key: str) -> Any:
    """`_shaped` of the outermost level only: an ordered or named list as a map of its items."""
    if not isinstance(value, list):
        return value
    if key in ORDERED_LISTS:
        return _Ordered(enumerate(value))
    names = [item.get("name") if isinstance(item, dict) else None for item in value]
    if value and all(isinstance(name, str) and name for name in names) and len(set(names)) == len(names):
        return _Named((_Name(name), item) for name, item in zip(names, value, strict=True))
    return value


def _unshaped(value: Any) -> Any:
    """Shaped data back as plain JSON data, for showing values."""
    if isinstance(value, _Ordered | _Named):
        return [_unshaped(item) for item in value.values()]
    if isinstance(value, dict):
        return {name: _unshaped(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_unshaped(item) for item in value]
    return value


def _path(parts: Sequence[Any]) -> str:
    """`['filterChains', 0, 'filters']` as `filterChains[0].filters`; names and odd keys in brackets."""
    text = ""
    for part in parts:
        if isinstance(part, int | _Was):
            text += f"[{part!r}]"
        elif isinstance(part, str) and part.isidentifier() and not isinstance(part, _Name):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(str(part))}]"
    return text or "(whole resource)"


def _change_data(change: FieldChange) -> dict[str, Any]:
    """A field change as data; the side without the field has no key."""
    data = {"path": change.path}
    if change.before is not ABSENT:
        data["controlPlane"] = change.before
    if change.after is not ABSENT:
        data["envoy"] = change.after
    return data


def show(value: Any) -> str:
    """A field's value on one line, cut at a readable width."""
    if value is ABSENT:
        return repr(ABSENT)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 3] + "..."
