"""What HTTP routes match on and do to headers: StringMatch, HTTPMatchRequest, Headers.

StringMatch keeps protobuf's oneof presence: of `exact`, `prefix` and `regex`, the one set is a
string (maybe empty: `exact: ""` matches an empty value) and the others are None; none set means
"present" wherever Istio reads an empty match that way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from meshctl.config.kinds.common import JWT_CLAIM_PREFIXES, LABELS, header_name_problem
from meshctl.config.kinds.networking.fields import GATEWAY_NAMES, NAMESPACE, PORT_OR_ZERO
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Map, Obj, Report, Rule
from meshctl.config.values import regex_problem

__all__ = [
    "ABSENT_HEADER_MATCH",
    "HTTPMatchRequest",
    "HeaderOperations",
    "Headers",
    "MAX_REGEX_LENGTH",
    "ORIGIN_MATCH",
    "StringMatch",
    "URI_MATCH",
    "regex_text_problem",
]

MAX_REGEX_LENGTH = 1024


def regex_text_problem(regex: str) -> str | None:
    if not regex:
        return "regex must not be empty"
    if len(regex) > MAX_REGEX_LENGTH:
        return f"regex is longer than {MAX_REGEX_LENGTH} characters"
    return regex_problem(regex)


def _string_match_rule(*, empty_prefix: bool = False, presence_regex: bool = False) -> Rule:
    """A StringMatch's check as used in one place.

    `empty_prefix`: a uri prefix may be "" (Envoy allows it for paths only); `presence_regex`:
    withoutHeaders treats regex "*" as "header present".
    """

    def rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
        if value.get("prefix") == "" and not empty_prefix:
            report((*path, "prefix"), "prefix must not be empty")
        regex = value.get("regex")
        if regex is None or (presence_regex and regex == "*"):
            return
        problem = regex_text_problem(regex)
        if problem:
            report((*path, "regex"), problem)

    return rule


_MATCH_KINDS = ("exact", "prefix", "regex")


@message(oneof=[_MATCH_KINDS], rules=[_string_match_rule()])
class StringMatch(Message):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


URI_MATCH = StringMatch.SCHEMA.extend(rules=[_string_match_rule(empty_prefix=True)])
ABSENT_HEADER_MATCH = StringMatch.SCHEMA.extend(rules=[_string_match_rule(presence_regex=True)])
ORIGIN_MATCH = StringMatch.SCHEMA.extend(oneof=[], exactly_one=[_MATCH_KINDS])


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _header_value_problem(value: str) -> str | None:
    """Envoy's header value syntax: no control characters, `%%` or a closed `%VARIABLE%`."""
    if _CONTROL_CHARACTERS.search(value):
        return f"header value {value!r} contains control characters"
    index = 0
    while index < len(value):
        if value[index] != "%":
            index += 1
            continue
        if value.startswith("%%", index):
            index += 2
            continue
        end = value.find("%", index + 1)
        if end == -1:
            return f"header value {value!r} has an unterminated %-variable; write %% for a literal %"
        index = end + 1
    return None


def _request_header_name_problem(name: str) -> str | None:
    """Names a request may set or add: anything but pseudo-headers, except the authority."""
    if not name:
        return "header name must not be empty"
    if name.startswith(":") and name.lower() != ":authority":
        return f"header {name!r} cannot be set: names starting with ':' are reserved"
    return None


def _fixed_header_name_problem(name: str) -> str | None:
    """Names that may be removed, or changed on responses: not Host, not pseudo-headers."""
    if not name:
        return "header name must not be empty"
    if name.lower() == "host" or name.startswith(":"):
        return f"header {name!r} cannot be changed here"
    return None


@message
class HeaderOperations(Message):
    """Headers to replace (`set`), append (`add`) or drop (`remove`)."""

    set: Mapping[str, str] = field()
    add: Mapping[str, str] = field()
    remove: tuple[str, ...] = ()


def _header_operations(set_name_problem: Callable[[str], str | None]) -> Obj:
    def rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
        for operation in ("set", "add"):
            for name, item in (value.get(operation) or {}).items():
                for problem in (set_name_problem(name), _header_value_problem(item)):
                    if problem:
                        report((*path, operation, name), problem)
        for index, name in enumerate(value.get("remove") or []):
            problem = _fixed_header_name_problem(name)
            if problem:
                report((*path, "remove", index), problem)

    return HeaderOperations.SCHEMA.extend(rules=[rule])


@message
class Headers(Message):
    """Header changes on the request (before it goes upstream) and on the response."""

    request: HeaderOperations | None = field(_header_operations(_request_header_name_problem))
    response: HeaderOperations | None = field(_header_operations(_fixed_header_name_problem))


def _http_match_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    for key in ("headers", "withoutHeaders"):
        for name in value.get(key) or {}:
            if name.startswith(JWT_CLAIM_PREFIXES):
                continue
            problem = header_name_problem(name)
            if problem:
                report((*path, key, name), problem)


@message(rules=[_http_match_rule])
class HTTPMatchRequest(Message):
    """One way a request can match an HTTP route; every condition set must hold."""

    name: str = ""
    uri: StringMatch | None = field(URI_MATCH)
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: Mapping[str, StringMatch] = field()
    port: int = field(PORT_OR_ZERO)
    source_labels: Mapping[str, str] = field(LABELS)
    gateways: tuple[str, ...] = field(GATEWAY_NAMES)
    query_params: Mapping[str, StringMatch] = field()
    ignore_uri_case: bool = False
    without_headers: Mapping[str, StringMatch] = field(Map(ABSENT_HEADER_MATCH))
    source_namespace: str = field(NAMESPACE)
    stat_prefix: str = ""
