"""What serve reports on `/metrics` about xDS and config; the names follow istiod's where one
exists. Other components of serve (its CA) add theirs with `include`, so one scrape sees all.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshctl.prometheus import Counter, Gauge, Histogram, Metric, render
from meshctl.resources import BY_TYPE_URL

__all__ = ["Metrics", "kind_label"]


def kind_label(type_url: str) -> str:
    """A resource type as a metric label: its short name (CDS, EDS, ...), or `other` for type URLs
    meshctl does not know, so a client cannot grow the label set with made-up ones."""
    kind = BY_TYPE_URL.get(type_url)
    return kind.short if kind else "other"


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
        self.config_errors = Gauge("meshctl_config_rejected_files",
                                   "Inputs (files, or cluster objects) currently refused by the loader.")
        self.rejected = Gauge("meshctl_config_rejected",
                              "Problems of each refused input: a file, or a cluster object as `Kind namespace/name`.",
                              ["input"])
        self.leader = Gauge("meshctl_leader", "1 while this replica holds the leader Lease (serve --leader-lease).")
        self.translate_errors = Counter("meshctl_config_translate_errors_total", "Accepted configs the translator failed on.")
        self.generations = Counter("meshctl_config_generations_total", "Configurations translated and pushed.")
        self.generation_errors = Counter(
            "meshctl_xds_generation_errors_total", "Failures to generate one proxy's config (it kept its last good one).")
        self.open_streams = Gauge("meshctl_xds_open_streams", "ADS and CSDS streams open, counted against --max-connections.")
        self.refused_streams = Counter(
            "meshctl_xds_refused_streams_total", "Streams refused at the --max-connections limit, by service.", ["service"])
        self.failing_proxies = Gauge(
            "meshctl_xds_proxies_failing_generation", "Connected proxies whose latest config failed to generate.")
        self.included: list[Metric] = []

    def include(self, metrics: Iterable[Metric]) -> None:
        """Render these (another component's) after serve's own."""
        self.included.extend(metrics)

    def all(self) -> Iterable[Metric]:
        return (
            self.connected, self.pushes, self.push_bytes, self.push_time, self.convergence,
            self.nacks, self.config_errors, self.rejected, self.leader, self.translate_errors, self.generations,
            self.generation_errors, self.failing_proxies, self.open_streams, self.refused_streams, *self.included,
        )

    def render(self) -> str:
        return render(self.all())
