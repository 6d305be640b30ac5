"""proxy-status tables, laid out as istioctl's `XdsStatusWriter` prints them (padding 5).

The default table counts each proxy's subscribed types (`4 (CDS,LDS,EDS,RDS)`); `-v 1` shows a
column per type, sorted by type URL, with istioctl's cells: `SYNCED (3m)` (the age of the last
push), `NOT SENT`, `STALE (5s)`, `ERROR (1m2s)`, and `IGNORED` for a type the proxy never
subscribed to. Ages need the current time, which is a parameter so tables can be tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from meshctl.inspect.tabwriter import tabulate
from meshctl.resources import short_name
from meshctl.status.duration import human_duration
from meshctl.status.syncz import VERBOSE_TYPES, ProxySync, TypeStatus

__all__ = ["PADDING", "status_cell", "status_table", "verbose_status_table"]

PADDING = 5


def status_table(rows: Sequence[ProxySync]) -> str:
    """NAME / CLUSTER / ISTIOD / VERSION / SUBSCRIBED TYPES, one row per proxy."""
    lines = ["NAME\tCLUSTER\tISTIOD\tVERSION\tSUBSCRIBED TYPES\n"]
    for row in rows:
        subscribed = row.subscribed
        names = f" ({','.join(short_name(t.type_url) for t in subscribed)})" if subscribed else ""
        lines.append(f"{row.proxy_id}\t{row.cluster_id}\t{row.istiod}\t{row.istio_version}\t{len(subscribed)}{names}\n")
    return tabulate("".join(lines), PADDING)


def verbose_status_table(rows: Sequence[ProxySync], now: datetime) -> str:
    """NAME / CLUSTER / one column per xDS type / ISTIOD / VERSION (`-v 1`)."""
    columns = sorted({*VERBOSE_TYPES, *(t.type_url for row in rows for t in row.types)})
    header = ["NAME", "CLUSTER", *(short_name(url) for url in columns), "ISTIOD", "VERSION"]
    lines = ["\t".join(header) + "\n"]
    for row in rows:
        cells = [status_cell(row.type_status(url), now) for url in columns]
        lines.append("\t".join([row.proxy_id, row.cluster_id, *cells, row.istiod, row.istio_version]) + "\n")
    return tabulate("".join(lines), PADDING)


def status_cell(status: TypeStatus | None, now: datetime) -> str:
    """istioctl's cell for one type: the status name, with the age of the last push if known."""
    if status is None or not status.subscribed:
        return "IGNORED"
    if status.status == "NOT_SENT":
        return "NOT SENT"
    if status.last_updated is None:
        return status.status
    return f"{status.status} ({human_duration((now - status.last_updated).total_seconds())})"
