"""Route matches in istioctl's words: `/prefix*`, `PathPrefix:/p`, `/exact`, `regex R`.

Headers, query parameters and other conditions are not described, as in istioctl.
"""

from __future__ import annotations

from typing import Any


def describe_match(match: Any) -> str:
    conditions = []
    if match.prefix:
        conditions.append(f"{match.prefix}*")
    if match.path_separated_prefix:
        conditions.append(f"PathPrefix:{match.path_separated_prefix}")
    if match.path:
        conditions.append(match.path)
    if match.HasField("safe_regex"):
        conditions.append(f"regex {match.safe_regex.regex}")
    return " ".join(conditions)
