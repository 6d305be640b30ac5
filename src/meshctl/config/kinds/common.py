"""Field types shared by several kinds: durations, ports, labels, string matches, selectors."""

from __future__ import annotations

from typing import Any

from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, Int, List, Map, Obj, Report, Str
from meshctl.config.values import (
    fqdn_problem,
    label_key_problem,
    label_value_problem,
    parse_duration,
    regex_problem,
)


class Duration(Str):
    """A duration string (`10s`, `1m30s`, `0.5s`) with an optional lower bound."""

    describe = "a duration such as '1s' or '100ms'"

    def __init__(self, minimum: str | None = "1ms") -> None:
        super().__init__()
        self.minimum = minimum
        self.minimum_nanos = parse_duration(minimum) if minimum else None

    def _check(self, value: Any, path: FieldPath, report: Report) -> None:
        if not isinstance(value, str):
            report(path, f"expected {self.describe}, got {type(value).__name__}")
            return
        nanos = parse_duration(value)
        if nanos is None:
            report(path, f"invalid duration {value!r} (use e.g. '10s', '500ms', '1m30s')")
        elif nanos < 0:
            report(path, f"duration must not be negative, got {value!r}")
        elif self.minimum_nanos is not None and nanos < self.minimum_nanos:
            report(path, f"duration must be at least {self.minimum}, got {value!r}")


def _regex_rule(value: str, path: FieldPath, report: Report) -> None:
    problem = regex_problem(value)
    if problem:
        report(path, problem)


def _fqdn_rule(value: str, path: FieldPath, report: Report) -> None:
    problem = fqdn_problem(value)
    if problem:
        report(path, problem)


def _labels_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    for key, item in value.items():
        problem = label_key_problem(key)
        if problem:
            report((*path, key), problem)
        elif isinstance(item, str):
            problem = label_value_problem(item)
            if problem:
                report((*path, key), problem)


REGEX = Str(rules=[_regex_rule])
HOST = Str(min_len=1, rules=[_fqdn_rule])
PORT = Int(1, 65535)
UINT32 = Int(0, 4294967295)
INT32 = Int(-2147483648, 2147483647)
POSITIVE_INT32 = Int(0, 2147483647)
LABELS = Map(Str(), rules=[_labels_rule])
STRINGS = List(Str())
DURATION = Duration()
ANY_DURATION = Duration(minimum=None)

STRING_MATCH = Obj(
    {"exact": Str(), "prefix": Str(), "regex": REGEX},
    oneof=[("exact", "prefix", "regex")],
)

PORT_SELECTOR = Obj({"number": PORT})

WORKLOAD_SELECTOR = Obj({"matchLabels": LABELS})

POLICY_TARGET_REFERENCE = Obj(
    {"group": Str(), "kind": Str(min_len=1), "name": Str(min_len=1), "namespace": Str()},
    required=["kind", "name"],
)


def _export_to_rule(value: list[Any], path: FieldPath, report: Report) -> None:
    if "~" in value and len(value) > 1:
        report(path, "'~' (export to nobody) cannot be combined with other values")
    if "*" in value and len(value) > 1:
        report(path, "'*' (export to all) cannot be combined with other values")


EXPORT_TO = List(
    Str(pattern=r"\*|\.|~|[a-z0-9]([-a-z0-9]*[a-z0-9])?", hint="use '.', '*', '~' or a namespace name"),
    unique=True,
    rules=[_export_to_rule],
)

TLS_VERSION = Enum("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")

