"""Route matches in istioctl's words: `/prefix*`, `PathPrefix:/p`, `/exact`, `regex R`.

istioctl describes the path only. The wide view (`conditions`) adds what else a request must
carry, so that two routes with the same path read differently: headers as `name=value`
(`name=value*` a prefix, `name=*value` a suffix, `name=*value*` a substring, `name~=regex`,
`name=[start,end)` a range, `name` present, `!name` absent, `!=` when inverted; the method is
the `:method` header), then query parameters as `?name=value`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["describe_conditions", "describe_match"]


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


def describe_conditions(match: Any) -> str:
    """The path (as `describe_match`) followed by every header and query parameter condition."""
    parts = [describe_match(match)]
    parts.extend(_header(header) for header in match.headers)
    parts.extend("?" + _header(parameter) for parameter in match.query_parameters)
    if match.HasField("grpc"):
        parts.append("grpc")
    return " ".join(part for part in parts if part)


def _header(matcher: Any) -> str:
    """One header (or query parameter) condition; both messages name their matcher alike."""
    name = matcher.name
    inverted = getattr(matcher, "invert_match", False)
    kind = matcher.WhichOneof(matcher.DESCRIPTOR.oneofs[0].name)
    if kind == "present_match":
        present = matcher.present_match != inverted
        return name if present else f"!{name}"
    if kind == "range_match":
        value = f"=[{matcher.range_match.start},{matcher.range_match.end})"
    elif kind == "string_match":
        value = _string(matcher.string_match)
    elif kind == "exact_match":  # deprecated forms still found in old dumps
        value = f"={matcher.exact_match}"
    elif kind == "prefix_match":
        value = f"={matcher.prefix_match}*"
    elif kind == "suffix_match":
        value = f"=*{matcher.suffix_match}"
    elif kind == "contains_match":
        value = f"=*{matcher.contains_match}*"
    elif kind == "safe_regex_match":
        value = f"~={matcher.safe_regex_match.regex}"
    else:
        return f"!{name}" if inverted else name
    return f"{name}!{value}" if inverted else f"{name}{value}"


def _string(matcher: Any) -> str:
    kind = matcher.WhichOneof("match_pattern")
    if kind == "exact":
        return f"={matcher.exact}"
    if kind == "prefix":
        return f"={matcher.prefix}*"
    if kind == "suffix":
        return f"=*{matcher.suffix}"
    if kind == "contains":
        return f"=*{matcher.contains}*"
    if kind == "safe_regex":
        return f"~={matcher.safe_regex.regex}"
    return "=?"
