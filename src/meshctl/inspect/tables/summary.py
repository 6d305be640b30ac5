"""`proxy-config all`: every summary in istioctl's order, names prefixed with their type."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from meshctl.inspect.configdump import ConfigDump
from meshctl.inspect.tables.bootstrap import bootstrap_summary
from meshctl.inspect.tables.clusters import ClusterFilter, clusters_table
from meshctl.inspect.tables.eds import eds_table
from meshctl.inspect.tables.endpoints import EndpointFilter
from meshctl.inspect.tables.listeners import ListenerFilter, listeners_table
from meshctl.inspect.tables.routes import RouteFilter, routes_table
from meshctl.inspect.tables.secrets import secrets_table

__all__ = ["SummaryFilters", "banner", "full_summary"]


@dataclass(frozen=True)
class SummaryFilters:
    clusters: ClusterFilter = field(default_factory=ClusterFilter)
    listeners: ListenerFilter = field(default_factory=ListenerFilter)
    routes: RouteFilter = field(default_factory=RouteFilter)
    endpoints: EndpointFilter = field(default_factory=EndpointFilter)


def full_summary(dump: ConfigDump, filters: SummaryFilters, now: datetime, with_headers: bool = False) -> Iterator[str]:
    """Yield the bootstrap, cluster, listener, route, secret and EDS summaries, a blank line
    apart, each after a `------ X INFO ------` banner when `with_headers` is set.

    It is a generator so that, like istioctl, the sections before a failing one are printed.
    """
    sections: list[tuple[str, Callable[[], str]]] = [
        ("BOOTSTRAP INFO", lambda: bootstrap_summary(dump)),
        ("CLUSTER INFO", lambda: clusters_table(dump, filters.clusters, prefixed=True)),
        ("LISTENER INFO", lambda: listeners_table(dump, filters.listeners, prefixed=True)),
        ("ROUTE INFO", lambda: routes_table(dump, filters.routes, prefixed=True)),
        ("SECRET INFO", lambda: secrets_table(dump, now, prefixed=True)),
        ("ENDPOINTS INFO", lambda: eds_table(dump, filters.endpoints, prefixed=True)),
    ]
    for index, (title, render) in enumerate(sections):
        if index:
            yield "\n"
        if with_headers:
            yield banner(title)
        yield render()


def banner(title: str) -> str:
    """istioctl's section title (`pc all --with-headers`), and its blank line."""
    return f"------ {title} ------\n\n"
