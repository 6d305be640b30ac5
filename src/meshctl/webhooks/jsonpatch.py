"""RFC 6902 JSON patches from the difference between two JSON documents.

The injection webhook answers with the patch that turns the pod it was sent into the injected
pod. Like the Go library Istio uses, objects are compared key by key and arrays index by index
(elements beyond the shorter array are added or removed at the end), which is always correct,
if not the shortest patch: any RFC 6902 implementation applied to the request's pod yields the
injected pod exactly.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Patch", "create_patch", "pointer_token"]

Patch = list[dict[str, Any]]


def create_patch(before: Any, after: Any) -> Patch:
    """Operations that turn `before` into `after` (JSON-ready values)."""
    patch: Patch = []
    _diff(before, after, "", patch)
    return patch


def pointer_token(key: str | int) -> str:
    """A key as one JSON Pointer token (RFC 6901: `~` is `~0`, `/` is `~1`)."""
    return str(key).replace("~", "~0").replace("/", "~1")


def _same_type(a: Any, b: Any) -> bool:
    # bool is an int in Python but not in JSON; 1 and 1.0 are one JSON number
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return True
    return type(a) is type(b)


def _diff(before: Any, after: Any, path: str, patch: Patch) -> None:
    if not _same_type(before, after):
        patch.append({"op": "replace", "path": path, "value": after})
    elif isinstance(before, dict):
        for key in before:
            if key not in after:
                patch.append({"op": "remove", "path": f"{path}/{pointer_token(key)}"})
        for key, value in after.items():
            child = f"{path}/{pointer_token(key)}"
            if key in before:
                _diff(before[key], value, child, patch)
            else:
                patch.append({"op": "add", "path": child, "value": value})
    elif isinstance(before, list):
        shared = min(len(before), len(after))
        for index in range(shared):
            _diff(before[index], after[index], f"{path}/{index}", patch)
        for index in range(len(before) - 1, shared - 1, -1):
            patch.append({"op": "remove", "path": f"{path}/{index}"})
        for index in range(shared, len(after)):
            patch.append({"op": "add", "path": f"{path}/{index}", "value": after[index]})
    elif before != after:
        patch.append({"op": "replace", "path": path, "value": after})
