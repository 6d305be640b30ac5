"""A few Prometheus metrics in the text exposition format, without a client library.

serve needs a handful of counters, gauges and one kind of histogram; a dependency for that would
cost more import time than the code below.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

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


class Metrics:
    """Everything serve reports on `/metrics`; the names follow istiod's where one exists."""

    def __init__(self) -> None:
        latency = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
        self.connected = Gauge("meshctl_xds_connected_proxies", "ADS streams open, by protocol.", ["mode"])
        self.pushes = Counter("meshctl_xds_pushes_total", "Responses sent, by type.", ["type"])
        self.push_bytes = Counter("meshctl_xds_pushed_bytes_total", "Bytes of responses sent, by type and protocol.", ["type", "mode"])
        self.push_time = Histogram(
            "meshctl_xds_push_time_seconds",
            "From the event that caused a push (config change or request) to the response being written.",
            latency,
            ["type"],
        )
        self.convergence = Histogram(
            "meshctl_proxy_convergence_time_seconds",
            "From the event that caused a push to the proxy's ACK of it.",
            latency,
        )
        self.nacks = Counter("meshctl_xds_nacks_total", "Responses rejected by proxies, by type.", ["type"])
        self.config_errors = Gauge("meshctl_config_rejected_files", "Files currently refused by the loader.")
        self.translate_errors = Counter("meshctl_config_translate_errors_total", "Accepted configs the translator failed on.")
        self.generations = Counter("meshctl_config_generations_total", "Configurations translated and pushed.")

    def all(self) -> Iterable[Counter | Histogram]:
        return (
            self.connected, self.pushes, self.push_bytes, self.push_time, self.convergence,
            self.nacks, self.config_errors, self.translate_errors, self.generations,
        )

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.all():
            lines.extend(metric.header())
            lines.extend(metric.lines())
        return "\n".join(lines) + "\n"
