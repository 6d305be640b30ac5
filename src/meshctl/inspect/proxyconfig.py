"""What `proxy-config` shows of one proxy: per view, the admin query that answers it and the
text of each output format (istioctl's short table, `-o json`, `-o yaml`).

Each view asks Envoy for the narrowest slice of its admin API it needs (`?mask=` on the config
dump, `?resource=&mask=` for the cluster table of a live Envoy), so a big proxy answers fast.
A saved file answers every path with the same bytes, so the same code reads files and live
Envoys. The tables themselves are pure functions in `inspect.tables`, each imported by the view that
prints it: the secret table alone pulls in `cryptography`, which the cluster table, run in
loops, should not pay for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from meshctl.formats import OutputFormat, to_yaml
from meshctl.inspect.adminpaths import (
    BOOTSTRAP_PATH,
    CLUSTER_LISTS,
    CLUSTERS_PATH,
    ECDS_PATH,
    EDS_PATH,
    ENDPOINTS_PATH,
    EVERYTHING_PATH,
    LISTENERS_PATH,
    ROUTES_PATH,
    SECRETS_PATH,
)
from meshctl.inspect.configdump import ConfigDump, parse_config_dump
from meshctl.inspect.protojson import message_list_text, message_text

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from meshctl.inspect.acquire import DumpSource
    from meshctl.inspect.tables.clusters import ClusterFilter
    from meshctl.inspect.tables.endpoints import EndpointFilter
    from meshctl.inspect.tables.listeners import ListenerFilter
    from meshctl.inspect.tables.routes import RouteFilter
    from meshctl.inspect.tables.summary import SummaryFilters

__all__ = [
    "bootstrap",
    "clusters",
    "ecds",
    "eds",
    "endpoints",
    "everything",
    "listeners",
    "masked_clusters",
    "routes",
    "secrets",
]

Note = Callable[[str], None]
"""Where a view sends a remark about its data (the CLI writes it to stderr)."""


def clusters(source: DumpSource, cluster_filter: ClusterFilter, output: OutputFormat) -> str:
    """Clusters (CDS, active and static). A live Envoy's table is built from the three fields
    it reads, which Envoy masks each cluster down to."""
    from meshctl.inspect.configdump import parse_cluster_answers
    from meshctl.inspect.tables.clusters import TABLE_FIELDS, clusters_table, sorted_clusters

    if output is OutputFormat.short:
        if source.live:
            answers = masked_clusters(source, TABLE_FIELDS)
            return clusters_table(parse_cluster_answers(answers, source.name), cluster_filter)
        return clusters_table(_dump(source, CLUSTERS_PATH, TABLE_FIELDS), cluster_filter)
    dump = _dump(source, CLUSTERS_PATH)
    return _messages(sorted_clusters(dump, cluster_filter), output, dump)


def masked_clusters(source: DumpSource, fields: Iterable[str]) -> Mapping[str, bytes]:
    """Envoy's answers for its static and active clusters with only `fields` of each cluster
    (`config_dump?resource=LIST&mask=cluster.F,...`; Envoy applies the mask inside every
    cluster), keyed by list, for `configdump.parse_cluster_answers`. Asked of a live source."""
    mask = ",".join(f"cluster.{name}" for name in fields)
    return {key: source.get(f"config_dump?resource={key}&mask={mask}") for key in CLUSTER_LISTS}


def listeners(source: DumpSource, listener_filter: ListenerFilter, output: OutputFormat) -> str:
    """Listeners (LDS), one row per filter chain."""
    from meshctl.inspect.tables.listeners import listeners_table

    dump = _dump(source, LISTENERS_PATH)
    if output is OutputFormat.short:
        return listeners_table(dump, listener_filter)
    return _messages([item for item in dump.listeners() if listener_filter.matches(item)], output, dump)


def routes(source: DumpSource, route_filter: RouteFilter, output: OutputFormat, *, wide: bool = False) -> str:
    """Route configurations (RDS and inline); `wide` adds destinations and owning config."""
    from meshctl.inspect.tables.routes import routes_table, sorted_route_configs

    dump = _dump(source, ROUTES_PATH)
    if output is OutputFormat.short:
        return routes_table(dump, route_filter, wide=wide)
    return _messages([item for item in sorted_route_configs(dump) if route_filter.matches(item)], output, dump)


def endpoints(source: DumpSource, endpoint_filter: EndpointFilter, output: OutputFormat) -> str:
    """Endpoints as Envoy sees them, with health, from `/clusters?format=json`."""
    from meshctl.inspect.configdump import parse_clusters
    from meshctl.inspect.tables.endpoints import endpoints_table, matching_cluster_statuses

    statuses = parse_clusters(source.get(ENDPOINTS_PATH), source.name)
    if output is OutputFormat.short:
        return endpoints_table(statuses, endpoint_filter)
    return message_list_text(matching_cluster_statuses(statuses, endpoint_filter), as_yaml=output is OutputFormat.yaml)


def eds(source: DumpSource, endpoint_filter: EndpointFilter, output: OutputFormat, note: Note) -> str:
    """Endpoints as the control plane sent them (the dump's EDS section, with locality)."""
    from meshctl.inspect.tables.eds import eds_table, filtered_assignments

    dump = _dump(source, EDS_PATH)
    _endpoints_note(source, dump, note)
    if output is OutputFormat.short:
        return eds_table(dump, endpoint_filter)
    return _messages(filtered_assignments(dump, endpoint_filter), output, dump)


def secrets(source: DumpSource, output: OutputFormat, now: datetime, *, wide: bool = False) -> str:
    """SDS secrets; VALID CERT is judged at `now`, and `wide` adds SANs, days left and chain."""
    from meshctl.inspect.tables.secrets import secrets_table

    dump = _dump(source, SECRETS_PATH)
    if output is OutputFormat.short:
        return secrets_table(dump, now, wide=wide)
    return _message(dump.secrets(), output, dump)


def bootstrap(source: DumpSource, output: OutputFormat) -> str:
    """The bootstrap Envoy started with; short is the Istio and Envoy versions."""
    from meshctl.inspect.tables.bootstrap import bootstrap_summary

    dump = _dump(source, BOOTSTRAP_PATH)
    if output is OutputFormat.short:
        return bootstrap_summary(dump)
    return _message(dump.bootstrap(), output, dump)


def ecds(source: DumpSource, output: OutputFormat) -> str:
    """Extension configs delivered by ECDS (Wasm plugins, telemetry filters)."""
    from meshctl.inspect.tables.ecds import ecds_table

    dump = _dump(source, ECDS_PATH)
    if output is OutputFormat.short:
        return ecds_table(dump)
    return _message(dump.ecds(), output, dump)


def everything(source: DumpSource, filters: SummaryFilters, output: OutputFormat, now: datetime, note: Note, *,
               with_headers: bool = False) -> Iterator[str]:
    """Every summary in istioctl's order, or with `-o json|yaml` the whole dump as Envoy wrote it.

    A generator, so that (as in istioctl) the sections before a failing one are printed.
    """
    from meshctl.inspect.tables.summary import full_summary

    data = source.get(EVERYTHING_PATH)
    if output is OutputFormat.short:
        dump = parse_config_dump(data, source.name)
        _endpoints_note(source, dump, note)
        yield from full_summary(dump, filters, now, with_headers=with_headers)
    elif output is OutputFormat.json:
        yield data.decode()
    else:
        yield to_yaml(json.loads(data))


def _dump(source: DumpSource, path: str, cluster_fields: Collection[str] | None = None) -> ConfigDump:
    from meshctl.inspect.acquire import masked_dump

    return parse_config_dump(masked_dump(source, path), source.name, cluster_fields=cluster_fields)


def _endpoints_note(source: DumpSource, dump: ConfigDump, note: Note) -> None:
    """A saved dump holds endpoints only if it was taken with `include_eds`: say so, rather
    than let an empty table pass for a proxy without endpoints."""
    from meshctl.inspect.configdump import ENDPOINTS

    if not source.live and not dump.has_section(ENDPOINTS):
        note(f"{source.name} has no endpoints section: Envoy writes one only when asked for "
             "/config_dump?include_eds (meshctl asks a live proxy that way)")


def _messages(messages: list[Message], output: OutputFormat, dump: ConfigDump) -> str:
    return message_list_text(messages, dump.pool, as_yaml=output is OutputFormat.yaml)


def _message(message: Message, output: OutputFormat, dump: ConfigDump) -> str:
    return message_text(message, dump.pool, as_yaml=output is OutputFormat.yaml)
