"""Label and field selectors, as the API server evaluates them on list and watch requests."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def selected(obj: Mapping[str, Any], params: Mapping[str, str]) -> bool:
    """Whether an object passes the `labelSelector` and `fieldSelector` of a request."""
    labels = obj.get("metadata", {}).get("labels") or {}
    return label_selector_matches(
        params.get("labelSelector", ""), labels
    ) and field_selector_matches(params.get("fieldSelector", ""), obj)


_REQUIREMENT = re.compile(r"(?:[^,(]|\([^)]*\))+")
_SET_REQUIREMENT = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQUALITY_REQUIREMENT = re.compile(r"^\s*([^\s!=()]+)\s*(==|!=|=)\s*([^\s!=()]*)\s*$")


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether labels satisfy a Kubernetes label selector (`a=b,c!=d,e in (f,g),!h,i`)."""
    for requirement in _REQUIREMENT.findall(selector):
        text = requirement.strip()
        if not text:
            continue
        if match := _SET_REQUIREMENT.match(text):
            key, operator, values = match.groups()
            allowed = {value.strip() for value in values.split(",") if value.strip()}
            ok = labels.get(key) in allowed if operator == "in" else labels.get(key) not in allowed
        elif match := _EQUALITY_REQUIREMENT.match(text):
            key, operator, value = match.groups()
            ok = labels.get(key) == value if operator != "!=" else labels.get(key) != value
        elif text.startswith("!"):
            ok = text[1:].strip() not in labels
        else:
            ok = text in labels
        if not ok:
            return False
    return True


def field_selector_matches(selector: str, obj: Mapping[str, Any]) -> bool:
    """Whether an object satisfies a field selector of dotted paths (`status.phase=Running`)."""
    for requirement in filter(None, (part.strip() for part in selector.split(","))):
        match = _EQUALITY_REQUIREMENT.match(requirement)
        if match is None:
            raise ValueError(f"invalid field selector: {requirement}")
        path, operator, expected = match.groups()
        value: Any = obj
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        actual = "" if value is None else str(value)
        if (actual == expected) != (operator != "!="):
            return False
    return True


