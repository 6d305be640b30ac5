"""Every proxy-config short table, from the dumps of a real Envoy that meshctl serve configured.

The dumps are taken from productpage-v1's Envoy in status_world.py's mesh. What changes from
run to run is made canonical before the tables are drawn: the ports and loopback addresses
picked at start (in numbers and in names, `status_world.canonical`) and Envoy's build version
(pinned). The certificates serve's CA issues differ on every run: their serial numbers and
dates are replaced by placeholders in the secret tables, and VALID CERT is judged at a frozen
time (when the dump was taken, inside every certificate's validity). See golden/README.md.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from status_support import assert_golden
from status_world import World, canonical

from meshctl.inspect.configdump import ConfigDump, parse_clusters, parse_config_dump
from meshctl.inspect.tables.bootstrap import bootstrap_summary
from meshctl.inspect.tables.clusters import ClusterFilter, clusters_table
from meshctl.inspect.tables.eds import eds_table
from meshctl.inspect.tables.endpoints import EndpointFilter, endpoints_table
from meshctl.inspect.tables.listeners import ListenerFilter, listeners_table
from meshctl.inspect.tables.routes import RouteFilter, routes_table
from meshctl.inspect.tables.secrets import secrets_table
from meshctl.inspect.tables.summary import SummaryFilters, full_summary
from meshctl.inspect.tabwriter import tabulate

POD = "productpage-v1"
PINNED_BUILD = {"version": {"major_number": 1, "minor_number": 40},
                "metadata": {"revision.status": "Clean", "build.type": "RELEASE", "ssl.version": "BoringSSL"}}  # fmt: skip
_SERIAL = re.compile(r"^[0-9a-f]{32,40}$")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def taken(world: World) -> tuple[ConfigDump, object, datetime]:
    """productpage-v1's config dump (with EDS) and /clusters, made canonical, and when taken."""
    replacements = world.replacements()
    document = json.loads(canonical(world.config_dump(POD, "/config_dump?include_eds"), replacements))
    [bootstrap] = [s for s in document["configs"] if s["@type"].endswith(".BootstrapConfigDump")]
    assert bootstrap["bootstrap"]["node"]["user_agent_build_version"]["version"]["major_number"] == 1
    bootstrap["bootstrap"]["node"]["user_agent_build_version"] = PINNED_BUILD
    dump = parse_config_dump(json.dumps(document).encode(), "productpage-v1 /config_dump")
    clusters = parse_clusters(canonical(world.config_dump(POD, "/clusters?format=json"), replacements), "/clusters")
    return dump, clusters, datetime.now(UTC)


def without_certificate_facts(table: str) -> str:
    """A secret table with each serial number and date replaced, realigned as istioctl would."""
    rows = []
    for line in table.splitlines():
        cells = re.split(r" {2,}", line.rstrip(" "))
        cells = ["<serial>" if _SERIAL.match(c) else "<time>" if _TIME.match(c) else c for c in cells]
        rows.append("\t".join(cells) + "\n")
    return tabulate("".join(rows), padding=5)


@pytest.mark.parametrize(
    ("golden", "table"),
    [
        ("real_clusters.txt", lambda dump: clusters_table(dump, ClusterFilter())),
        ("real_clusters_reviews_v1.txt", lambda dump: clusters_table(dump, ClusterFilter(fqdn="reviews", subset="v1"))),
        ("real_listeners.txt", lambda dump: listeners_table(dump, ListenerFilter())),
        ("real_listeners_short.txt", lambda dump: listeners_table(dump, ListenerFilter(verbose=False))),
        ("real_routes.txt", lambda dump: routes_table(dump, RouteFilter())),
        ("real_routes_short.txt", lambda dump: routes_table(dump, RouteFilter(verbose=False))),
        ("real_eds.txt", lambda dump: eds_table(dump, EndpointFilter())),
        ("real_bootstrap.txt", bootstrap_summary),
    ],
)  # fmt: skip
def test_tables(taken: tuple[ConfigDump, object, datetime], golden: str, table: object) -> None:
    dump, _, _ = taken
    assert_golden(golden, table(dump))  # type: ignore[operator]


def test_endpoints(taken: tuple[ConfigDump, object, datetime]) -> None:
    _, clusters, _ = taken
    assert_golden("real_endpoints.txt", endpoints_table(clusters, EndpointFilter()))


def test_secrets_with_a_frozen_clock(taken: tuple[ConfigDump, object, datetime]) -> None:
    dump, _, now = taken
    table = secrets_table(dump, now)
    serial_columns = {line.index(cell) for line in table.splitlines()[1:] for cell in line.split() if _SERIAL.match(cell)}
    assert len(serial_columns) == 1, "the serial numbers line up"
    assert_golden("real_secrets.txt", without_certificate_facts(table))


def test_all(taken: tuple[ConfigDump, object, datetime]) -> None:
    dump, _, now = taken
    parts = list(full_summary(dump, SummaryFilters(), now, with_headers=True))
    secrets = parts.index("------ SECRET INFO ------\n\n") + 1
    parts[secrets] = without_certificate_facts(parts[secrets])
    assert_golden("real_all.txt", "".join(parts))
