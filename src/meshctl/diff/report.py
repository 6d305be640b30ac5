"""A mesh diff as text (`-o short`) and as data (`-o json`, `-o yaml`).

The text names the changed input resources with their file:line, then one block per group of
proxies that change alike: the proxies (the first few, and how many more), and each Envoy
resource added (`+`), removed (`-`) or changed (`~`) with its field paths and values, as
`proxy-status --semantic` prints them.
"""

from __future__ import annotations

from typing import Any

from meshctl.diff.compare import ADDED, CHANGED, REMOVED, EnvoyChange, MeshDiff, ProxyGroup
from meshctl.status.semantic import ABSENT, FieldChange, show

__all__ = ["diff_data", "diff_text"]

_MARKS = {ADDED: "+", REMOVED: "-", CHANGED: "~"}
_SHOWN_PROXIES = 5


def diff_text(diff: MeshDiff, *, verbose: bool = False) -> str:
    """The diff for a reader; `verbose` lists every proxy of each group."""
    if not diff.inputs:
        return "no changes: both sides hold the same resources\n"
    lines = ["input changes:"]
    lines += [f"  {_MARKS[c.change]} {c.ref} ({c.location})" for c in diff.inputs]
    lines.append("")
    changed = sum(len(group.proxies) for group in diff.groups)
    if not diff.groups:
        lines.append(f"no proxy changes: none of the {diff.proxies} proxies' Envoy config differs")
        return "\n".join(lines) + "\n"
    lines.append(f"proxy changes: {changed} of {diff.proxies} proxies, in {len(diff.groups)} "
                 f"group{'s' if len(diff.groups) != 1 else ''}")
    for group in diff.groups:
        lines.append("")
        lines.extend(_group_text(group, verbose))
    return "\n".join(lines) + "\n"


def _group_text(group: ProxyGroup, verbose: bool) -> list[str]:
    count = len(group.proxies)
    shown = group.proxies if verbose else group.proxies[:_SHOWN_PROXIES]
    more = f" and {count - len(shown)} more" if len(shown) < count else ""
    if group.status != CHANGED:
        kinds: dict[str, int] = {}
        for change in group.changes:
            kinds[change.kind] = kinds.get(change.kind, 0) + 1
        held = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in kinds.items())
        return [f"{_MARKS[group.status]} proxy {group.proxies[0]} {group.status} ({held})"]
    lines = [f"* {count} prox{'ies' if count != 1 else 'y'}: {', '.join(shown)}{more}"]
    for change in group.changes:
        lines.append(f"  {_MARKS[change.change]} {change.kind} {change.name}")
        lines.extend(f"      {f.path}: {show(f.before)} -> {show(f.after)}" for f in change.fields)
    return lines


def diff_data(diff: MeshDiff) -> dict[str, Any]:
    return {
        "changed": diff.changed,
        "inputs": [{"kind": c.kind, "namespace": c.namespace, "name": c.name, "change": c.change,
                    "location": c.location} for c in diff.inputs],
        "proxies": diff.proxies,
        "groups": [{"proxies": list(g.proxies), "status": g.status, "changes": [_change_data(c) for c in g.changes]}
                   for g in diff.groups],
    }


def _change_data(change: EnvoyChange) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": change.kind, "name": change.name, "change": change.change}
    if change.fields:
        out["fields"] = [_field_data(f) for f in change.fields]
    return out


def _field_data(field: FieldChange) -> dict[str, Any]:
    out: dict[str, Any] = {"path": field.path}
    if field.before is not ABSENT:
        out["before"] = field.before
    if field.after is not ABSENT:
        out["after"] = field.after
    return out
