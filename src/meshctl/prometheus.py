"""Prometheus metrics in the text exposition format, without a client library.

serve and its CA need a handful of counters, gauges and one kind of histogram; a dependency for
that would cost more import time than the code below. Each component keeps its own metrics and
the debug server renders them all on one `/metrics`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

__all__ = ["Counter", "Gauge", "Histogram", "LabelValues", "Metric", "render", "samples"]

LabelValues = tuple[str, ...]


def _labels(names: Sequence[str], values: LabelValues, extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + amount

    def value(self, *labels: str) -> float:
        return self.values.get(labels, 0)

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in sorted(self.values.items())]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.bounds = tuple(sorted(buckets))
        self.series: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *labels: str) -> None:
        counts, totals = self.series.setdefault(labels, ([0] * (len(self.bounds) + 1), [0.0]))
        counts[bisect.bisect_left(self.bounds, value)] += 1
        totals[0] += value

    def count(self, *labels: str) -> int:
        found = self.series.get(labels)
        return sum(found[0]) if found else 0

    def lines(self) -> list[str]:
        out: list[str] = []
        for key, (counts, totals) in sorted(self.series.items()):
            running = 0
            for bound, count in zip((*map(_number, self.bounds), "+Inf"), counts, strict=True):
                running += count
                le = 'le="' + bound + '"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {running}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(totals[0])}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {running}")
        return out


Metric = Counter | Histogram


def render(metrics: Iterable[Metric]) -> str:
    """The exposition text of `metrics`, each with its HELP and TYPE lines."""
    lines: list[str] = []
    for metric in metrics:
        lines.extend(metric.header())
        lines.extend(metric.lines())
    return "\n".join(lines) + "\n"


def samples(text: str) -> dict[str, float]:
    """Exposition text read back: each sample's name (labels included, as written) → value."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
