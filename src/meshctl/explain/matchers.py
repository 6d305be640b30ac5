"""Envoy's matchers (string, header, query parameter, CIDR, regex), evaluated against one request
the way Envoy evaluates them, each answer with the words that explain it.

Every check answers MATCH, MISS or UNKNOWN: a matcher whose outcome this process cannot decide
(a custom matcher extension, a regex in RE2 syntax Python does not read) is never guessed at.
Regular expressions are RE2 in Envoy; the common subset is Python's too, and the few spellings
that differ (`\\z`, `(?<name>`) are translated before compiling.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshctl.explain.request import Request

__all__ = [
    "Check",
    "Verdict",
    "cidr_contains",
    "describe_string",
    "header_check",
    "query_check",
    "query_params",
    "regex_full_match",
    "string_match",
]


class Verdict(enum.Enum):
    MATCH = "match"
    MISS = "miss"
    UNKNOWN = "unknown"

    @staticmethod
    def of(value: bool | None) -> Verdict:
        if value is None:
            return Verdict.UNKNOWN
        return Verdict.MATCH if value else Verdict.MISS


@dataclass(frozen=True, slots=True)
class Check:
    """One criterion's verdict and why: `reason` reads well after "matched:" or "no match:"."""

    verdict: Verdict
    reason: str

    @property
    def matched(self) -> bool:
        return self.verdict is Verdict.MATCH


def combine(checks: Sequence[Check]) -> Verdict:
    """All criteria must match: one miss decides, else one unknown leaves it open."""
    verdicts = {check.verdict for check in checks}
    if Verdict.MISS in verdicts:
        return Verdict.MISS
    if Verdict.UNKNOWN in verdicts:
        return Verdict.UNKNOWN
    return Verdict.MATCH


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    """RE2 syntax as Python's, or None when Python cannot read it the same way."""
    translated = pattern.replace("\\z", "\\Z")
    translated = re.sub(r"\(\?<(?![=!])", "(?P<", translated)
    if "\\p" in translated or "\\P" in translated or "[[:" in translated:
        return None
    try:
        return re.compile(translated)
    except re.error:
        return None


def regex_full_match(pattern: str, text: str) -> bool | None:
    """Does the RE2 `pattern` match the whole of `text` (Envoy's safe_regex)? None: cannot tell."""
    compiled = _compile(pattern)
    if compiled is None:
        return None
    return compiled.fullmatch(text) is not None


def string_match(matcher: Any, value: str) -> bool | None:
    """An `envoy.type.matcher.v3.StringMatcher` against a value; None when it cannot be decided."""
    which = matcher.WhichOneof("match_pattern")
    if which == "safe_regex":
        return regex_full_match(matcher.safe_regex.regex, value)
    if which is None or which == "custom":
        return None
    wanted = str(getattr(matcher, which))
    if matcher.ignore_case:
        wanted, value = wanted.lower(), value.lower()
    if which == "exact":
        return value == wanted
    if which == "prefix":
        return value.startswith(wanted)
    if which == "suffix":
        return value.endswith(wanted)
    if which == "contains":
        return wanted in value
    return None


def describe_string(matcher: Any) -> str:
    """`exact "jason"`, `prefix "/api" (any case)`, `regex "^/v[0-9]+$"`."""
    which = matcher.WhichOneof("match_pattern")
    if which == "safe_regex":
        return f"regex {_quote(matcher.safe_regex.regex)}"
    if which is None:
        return "(empty matcher)"
    if which == "custom":
        return f"custom matcher {matcher.custom.name}"
    text = f"{which} {_quote(getattr(matcher, which))}"
    return text + (" (any case)" if matcher.ignore_case else "")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def header_check(matcher: Any, request: Request) -> Check:
    """An `envoy.config.route.v3.HeaderMatcher` against the request's headers.

    As in Envoy: several values of one header are joined with `,`; a missing header matches
    only `present_match: false` (or, inverted, anything but a presence check) unless
    `treat_missing_header_as_empty` evaluates it as "".
    """
    name = matcher.name
    values = request.header_values(name)
    which = matcher.WhichOneof("header_match_specifier")
    wanted = _describe_header(matcher, which)
    label = f"header {name}"
    if not values and not matcher.treat_missing_header_as_empty:
        if matcher.invert_match:
            matched = which != "present_match"
        else:
            matched = which == "present_match" and not matcher.present_match
        return Check(Verdict.of(matched), f"{label} is absent ({wanted})")
    value = ",".join(values)
    result: bool | None
    if which == "string_match":
        result = string_match(matcher.string_match, value)
    elif which == "safe_regex_match":
        result = regex_full_match(matcher.safe_regex_match.regex, value)
    elif which == "exact_match":
        result = not matcher.exact_match or value == matcher.exact_match
    elif which == "prefix_match":
        result = value.startswith(matcher.prefix_match)
    elif which == "suffix_match":
        result = value.endswith(matcher.suffix_match)
    elif which == "contains_match":
        result = matcher.contains_match in value
    elif which == "present_match":
        result = matcher.present_match
    elif which == "range_match":
        result = _in_range(value, matcher.range_match)
    else:
        result = True  # no specifier: presence
    if result is not None and matcher.invert_match:
        result = not result
    shown = f'"{value}"' if values else '"" (absent, taken as empty)'
    return Check(Verdict.of(result), f"{label} is {shown} ({wanted})")


def _describe_header(matcher: Any, which: str | None) -> str:
    invert = matcher.invert_match
    if which == "present_match":
        want_present = matcher.present_match != invert
        return "wanted present" if want_present else "wanted absent"
    if which == "string_match":
        text = describe_string(matcher.string_match)
    elif which == "safe_regex_match":
        text = f"regex {_quote(matcher.safe_regex_match.regex)}"
    elif which == "range_match":
        text = f"in [{matcher.range_match.start}, {matcher.range_match.end})"
    elif which is None:
        text = "present"
    else:
        text = f"{which.removesuffix('_match')} {_quote(getattr(matcher, which))}"
    return ("wanted not " if invert else "wanted ") + text


def _in_range(value: str, int_range: Any) -> bool:
    try:
        number = int(value)
    except ValueError:
        return False
    return int(int_range.start) <= number < int(int_range.end)


def query_params(path: str) -> dict[str, list[str]]:
    """The decoded query parameters of a `:path`, every value of each, in order."""
    _, question, query = path.partition("?")
    if not question:
        return {}
    query = query.split("#", 1)[0]
    params: dict[str, list[str]] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params


def query_check(matcher: Any, params: dict[str, list[str]]) -> Check:
    """An `envoy.config.route.v3.QueryParameterMatcher`: Envoy looks at the first value only."""
    values = params.get(matcher.name)
    label = f"query parameter {matcher.name}"
    which = matcher.WhichOneof("query_parameter_match_specifier")
    if which == "string_match":
        wanted = f"wanted {describe_string(matcher.string_match)}"
    elif which == "present_match" and not matcher.present_match:
        wanted = "wanted absent"
    else:
        wanted = "wanted present"
    if not values:
        if which == "present_match" and not matcher.present_match:
            return Check(Verdict.MATCH, f"{label} is absent ({wanted})")
        return Check(Verdict.MISS, f"{label} is absent ({wanted})")
    if which == "string_match":
        result = string_match(matcher.string_match, values[0])
        return Check(Verdict.of(result), f'{label} is "{values[0]}" ({wanted})')
    if which == "present_match" and not matcher.present_match:
        return Check(Verdict.MISS, f"{label} is present ({wanted})")
    return Check(Verdict.MATCH, f"{label} is present")


def cidr_contains(address: str, prefix: str, length: int) -> bool:
    """Is `address` inside `prefix/length`? False for addresses of the other family."""
    try:
        network = ipaddress.ip_network(f"{prefix}/{length}", strict=False)
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False
