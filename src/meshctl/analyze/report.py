"""From findings to what `istioctl analyze` prints: which messages are kept, their order, and
the `log`, `json` and `yaml` renderings, byte for byte.

Kept are the messages on resources of the analyzed namespace (all of them with `-A`; a
cluster-scoped resource's always) that neither a `-S CODE=RESOURCE` flag nor the resource's
`galley.istio.io/analyze-suppress` annotation suppresses. They are sorted as istioctl sorts
them (level, worst first; code; `Kind namespace/name`; the whole line) and exact duplicates
are dropped. JSON is Go's `json.MarshalIndent` of messages as maps (keys in byte order, `<`,
`>` and `&` escaped, tab indents); YAML is the same maps through a YAML emitter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshctl.analyze.finding import Finding
from meshctl.analyze.messages import LEVELS, Level, by_code, level_rank
from meshctl.errors import UsageError
from meshctl.model.proxy import ISTIO_VERSION

__all__ = [
    "FORMATS",
    "SUPPRESS_ANNOTATION",
    "Suppression",
    "documentation_base",
    "keep",
    "parse_level",
    "parse_suppressions",
    "reaches",
    "render",
]

FORMATS = ("log", "json", "yaml")
SUPPRESS_ANNOTATION = "galley.istio.io/analyze-suppress"
_COLORS: dict[Level, str] = {"Error": "\033[1;31m", "Warning": "\033[33m", "Info": ""}
_RESET = "\033[0m"


def documentation_base() -> str:
    """Istio's analysis docs for the Istio version meshctl follows."""
    major, minor, *_ = ISTIO_VERSION.split(".")
    return f"https://istio.io/v{major}.{minor}/docs/reference/config/analysis"


@dataclass(frozen=True, slots=True)
class Suppression:
    """`-S CODE=RESOURCE`: RESOURCE is matched against `Kind namespace/name`, `*` matching
    any run of characters (slashes and spaces included)."""

    code: str
    pattern: str

    def matches(self, item: Finding) -> bool:
        if item.code != self.code:
            return False
        regex = ".*".join(re.escape(part) for part in self.pattern.split("*"))
        return re.fullmatch(regex, item.origin) is not None


def parse_suppressions(values: Iterable[str]) -> tuple[list[Suppression], list[str]]:
    """The suppressions of `-S` values, and warnings for codes no message type has (istioctl
    goes on without them); a value that is not `CODE=RESOURCE` is a usage error."""
    suppressions: list[Suppression] = []
    warnings: list[str] = []
    for value in values:
        parts = value.split("=")
        if len(parts) != 2:
            raise UsageError(f"{value} is not a valid suppression value. See meshctl analyze --help")
        code, pattern = parts
        if by_code(code) is None:
            warnings.append(f"Warning: Supplied message code '{code}' is an unknown message code and will not have "
                            "any effect.")
        suppressions.append(Suppression(code, pattern))
    return suppressions, warnings


def parse_level(text: str, flag: str) -> Level:
    """A level name, in any case (`error`, `Warning`)."""
    for level in LEVELS:
        if level.lower() == text.lower():
            return level
    raise UsageError(f"invalid value {text!r} for {flag}: valid values are {', '.join(reversed(LEVELS))}")


def _annotation_suppresses(item: Finding) -> bool:
    codes = {code.strip() for code in item.resource.annotations.get(SUPPRESS_ANNOTATION, "").split(",")}
    return "*" in codes or item.code in codes


def keep(findings: Iterable[Finding], namespace: str | None, suppressions: Sequence[Suppression]) -> list[Finding]:
    """The findings istioctl would report for `namespace` (None: all), sorted, without
    duplicates."""
    kept = [
        item for item in findings
        if (namespace is None or not item.resource.namespace or item.resource.namespace == namespace)
        and not _annotation_suppresses(item)
        and not any(suppression.matches(item) for suppression in suppressions)
    ]
    kept.sort(key=lambda item: (level_rank(item.level), item.code, item.origin, str(item)))
    unique: list[Finding] = []
    for item in kept:
        if not unique or str(unique[-1]) != str(item):
            unique.append(item)
    return unique


def reaches(findings: Iterable[Finding], threshold: Level) -> bool:
    """Whether any finding is at `threshold` or worse."""
    return any(level_rank(item.level) <= level_rank(threshold) for item in findings)


def _fields(item: Finding) -> dict[str, str]:
    fields = {"code": item.code, "level": item.level, "message": item.message, "origin": item.origin}
    if item.reference:
        fields["reference"] = item.reference
    if item.code.startswith("IST"):
        fields["documentationUrl"] = f"{documentation_base()}/{item.code.lower()}/?ref=istioctl-analyze"
    return dict(sorted(fields.items()))


def _go_json(value: object) -> str:
    """Go's json.MarshalIndent(value, "", "\\t"): HTML-sensitive characters escaped."""
    text = json.dumps(value, indent="\t", ensure_ascii=False, separators=(",", ": "))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def render(findings: Sequence[Finding], output: str, color: bool = False) -> str:
    """The text istioctl prints for these findings (without its final newline)."""
    if output == "json":
        return _go_json([_fields(item) for item in findings])
    if output == "yaml":
        import yaml

        return yaml.safe_dump([_fields(item) for item in findings], sort_keys=True, allow_unicode=True,
                              default_flow_style=False)
    lines = []
    for item in findings:
        line = str(item)
        if color:
            line = f"{_COLORS[item.level]}{item.level}{_RESET}{line[len(item.level):]}"
        lines.append(line)
    return "\n".join(lines)
