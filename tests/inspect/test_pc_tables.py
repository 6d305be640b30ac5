"""istioctl's short tables, checked against golden files (see golden/README.md for how each
golden was checked by hand)."""

from __future__ import annotations

import json
import re

import pytest
from inspect_support import FROZEN_NOW, assert_golden, data

from meshctl.errors import MeshctlError
from meshctl.inspect.configdump import ConfigDump, parse_clusters, parse_config_dump
from meshctl.formats import to_yaml
from meshctl.inspect.protojson import message_list_json, message_object
from meshctl.inspect.tables.bootstrap import bootstrap_summary
from meshctl.inspect.tables.clusters import ClusterFilter, clusters_table, sorted_clusters
from meshctl.inspect.tables.ecds import ecds_table
from meshctl.inspect.tables.eds import eds_table
from meshctl.inspect.tables.endpoints import EndpointFilter, endpoints_table, matching_cluster_statuses
from meshctl.inspect.tables.listeners import ListenerFilter, listeners_table
from meshctl.inspect.tables.routes import RouteFilter, describe_domains, routes_table
from meshctl.inspect.tables.secrets import NO_SECRETS, secrets_table
from meshctl.inspect.tables.subsetkey import SubsetKey, parse_subset_key
from meshctl.inspect.tables.summary import SummaryFilters, full_summary


@pytest.mark.parametrize(
    ("golden", "cluster_filter"),
    [
        ("clusters.txt", ClusterFilter()),
        ("clusters_port_9080_outbound.txt", ClusterFilter(port=9080, direction="outbound")),
        ("clusters_fqdn_subset.txt", ClusterFilter(fqdn="reviews", subset="v")),
    ],
)
def test_clusters(sidecar: ConfigDump, golden: str, cluster_filter: ClusterFilter) -> None:
    assert_golden(golden, clusters_table(sidecar, cluster_filter))


@pytest.mark.parametrize(
    ("golden", "listener_filter"),
    [
        ("listeners.txt", ListenerFilter()),
        ("listeners_short.txt", ListenerFilter(verbose=False)),
        ("listeners_port_15006.txt", ListenerFilter(port=15006)),
        ("listeners_additional_address.txt", ListenerFilter(address="::", type="http+tcp")),
    ],
)
def test_listeners(sidecar: ConfigDump, golden: str, listener_filter: ListenerFilter) -> None:
    assert_golden(golden, listeners_table(sidecar, listener_filter))


@pytest.mark.parametrize(
    ("golden", "route_filter", "wide"),
    [
        ("routes.txt", RouteFilter(), False),
        ("routes_short.txt", RouteFilter(verbose=False), False),
        ("routes_wide.txt", RouteFilter(), True),
        ("routes_name_80.txt", RouteFilter(name="80"), False),
    ],
)
def test_routes(sidecar: ConfigDump, golden: str, route_filter: RouteFilter, wide: bool) -> None:
    assert_golden(golden, routes_table(sidecar, route_filter, wide=wide))


def test_wide_routes_only_add_columns(sidecar: ConfigDump) -> None:
    default = routes_table(sidecar, RouteFilter()).splitlines()
    wide = routes_table(sidecar, RouteFilter(), wide=True).splitlines()
    assert len(default) == len(wide)
    assert all(
        line.split()[:2] == extended.split()[:2] for line, extended in zip(default, wide, strict=True) if line.strip()
    )


@pytest.mark.parametrize(
    ("golden", "endpoint_filter"),
    [
        ("eds.txt", EndpointFilter()),
        (
            "eds_cluster_status.txt",
            EndpointFilter(cluster="OUTBOUND|9080||REVIEWS.DEFAULT.SVC.CLUSTER.LOCAL", status="healthy"),
        ),
        ("eds_port_8081.txt", EndpointFilter(port=8081)),
        ("eds_address_with_port.txt", EndpointFilter(address="10.244.0.31:9080")),
    ],
)
def test_eds(sidecar: ConfigDump, golden: str, endpoint_filter: EndpointFilter) -> None:
    assert_golden(golden, eds_table(sidecar, endpoint_filter))


def test_eds_address_filter_without_port_matches_nothing(sidecar: ConfigDump) -> None:
    # istioctl compares the EDS address *with* its port; a bare IP never matches.
    assert eds_table(sidecar, EndpointFilter(address="10.244.0.31")) == "NAME     STATUS     LOCALITY     CLUSTER\n"


@pytest.mark.parametrize(
    ("golden", "endpoint_filter"),
    [
        ("endpoints.txt", EndpointFilter()),
        ("endpoints_unhealthy.txt", EndpointFilter(status="UnHealthy")),
        ("endpoints_address_port.txt", EndpointFilter(address="10.244.0.31", port=9080)),
    ],
)
def test_endpoints_from_clusters_json(golden: str, endpoint_filter: EndpointFilter) -> None:
    clusters = parse_clusters(data("clusters.json"), "clusters.json")
    assert_golden(golden, endpoints_table(clusters, endpoint_filter))


def test_secrets(sidecar: ConfigDump) -> None:
    assert_golden("secrets.txt", secrets_table(sidecar, FROZEN_NOW))


def test_secrets_wide(sidecar: ConfigDump) -> None:
    assert_golden("secrets_wide.txt", secrets_table(sidecar, FROZEN_NOW, wide=True))


def test_secrets_with_spiffe_trust_domains() -> None:
    dump = parse_config_dump(data("spiffe_secrets.json"), "spiffe_secrets.json")
    assert_golden("secrets_spiffe.txt", secrets_table(dump, FROZEN_NOW, wide=True))


def test_secret_validity_follows_the_clock(sidecar: ConfigDump) -> None:
    before = FROZEN_NOW.replace(year=2025)
    rows = {line.split()[0]: line for line in secrets_table(sidecar, before).splitlines()}
    assert " false " in rows["default"]
    assert " true " in secrets_table(sidecar, FROZEN_NOW).splitlines()[3]


def test_no_secrets() -> None:
    empty = b'{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"}]}'
    assert secrets_table(parse_config_dump(empty, "x"), FROZEN_NOW) == NO_SECRETS


def test_ecds(sidecar: ConfigDump) -> None:
    assert_golden("ecds.txt", ecds_table(sidecar))


def test_bootstrap_summary(sidecar: ConfigDump, gateway: ConfigDump) -> None:
    assert_golden("bootstrap.txt", bootstrap_summary(sidecar))
    assert bootstrap_summary(gateway) == (
        "Istio Version:       1.28.1\nIstio Proxy Version: 8f4c1b0e2d\nEnvoy Version:       1.36.0/Clean/RELEASE\n"
    )


def test_all_summary(sidecar: ConfigDump) -> None:
    assert_golden("all.txt", "".join(full_summary(sidecar, SummaryFilters(), FROZEN_NOW)))


def test_all_summary_with_headers_from_camel_case(gateway: ConfigDump) -> None:
    assert_golden(
        "all_with_headers.txt", "".join(full_summary(gateway, SummaryFilters(), FROZEN_NOW, with_headers=True))
    )


def test_all_summary_stops_at_the_first_failing_section() -> None:
    dump = parse_config_dump(data("spiffe_secrets.json"), "x")
    chunks = full_summary(dump, SummaryFilters(), FROZEN_NOW, with_headers=True)
    assert next(chunks) == "------ BOOTSTRAP INFO ------\n\n"
    with pytest.raises(MeshctlError, match=r"no configuration type .*BootstrapConfigDump"):
        next(chunks)


def test_camel_case_parses_like_snake_case(sidecar: ConfigDump) -> None:
    from google.protobuf import json_format

    camel = json.dumps(json_format.MessageToDict(sidecar.message, descriptor_pool=sidecar.pool))
    assert '"dynamicActiveClusters"' in camel and '"dynamic_active_clusters"' not in camel
    again = parse_config_dump(camel.encode(), "camel")
    assert clusters_table(again, ClusterFilter()) == clusters_table(sidecar, ClusterFilter())
    assert listeners_table(again, ListenerFilter()) == listeners_table(sidecar, ListenerFilter())
    assert routes_table(again, RouteFilter()) == routes_table(sidecar, RouteFilter())
    assert eds_table(again, EndpointFilter()) == eds_table(sidecar, EndpointFilter())


def test_json_array_output(sidecar: ConfigDump) -> None:
    assert_golden(
        "clusters_details.json",
        message_list_json(sorted_clusters(sidecar, ClusterFilter(fqdn="details")), sidecar.pool) + "\n",
    )


def test_yaml_output(sidecar: ConfigDump) -> None:
    from meshctl.inspect.tables.routes import sorted_route_configs

    routes = [route for route in sorted_route_configs(sidecar) if route.name == "80"]
    assert_golden("routes_name_80.yaml", to_yaml([message_object(route, sidecar.pool) for route in routes]))


def test_endpoints_json_keeps_whole_clusters() -> None:
    clusters = parse_clusters(data("clusters.json"), "clusters.json")
    matching = matching_cluster_statuses(clusters, EndpointFilter(status="unhealthy"))
    assert [status.name for status in matching] == ["outbound|9080||reviews.default.svc.cluster.local"]
    assert len(matching[0].host_statuses) == 3


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            SubsetKey("outbound", "v1", "reviews.default.svc.cluster.local", 9080),
        ),
        ("inbound|9080||", SubsetKey("inbound", "", "", 9080)),
        ("outbound|80|a|b|c", SubsetKey("outbound", "a", "", 80)),
        ("outbound|http|v1|ratings", SubsetKey("outbound", "v1", "ratings", 0)),
        (
            "outbound_.9080_.v1_.reviews.default.svc.cluster.local",
            SubsetKey("outbound", "v1", "reviews.default.svc.cluster.local", 9080),
        ),
        ("a|1", SubsetKey("a", "", "", 0)),
        ("a|1|s", SubsetKey("a", "", "", 1)),
        ("plain", SubsetKey("", "", "", 0)),
    ],
)
def test_parse_subset_key(name: str, expected: SubsetKey) -> None:
    assert parse_subset_key(name) == expected


@pytest.mark.parametrize(
    ("domains", "expected"),
    [
        ([], ""),
        (["a:80"], "a:80"),
        (["a.svc.cluster.local", "a"], "a"),
        (["a", "a:80", "b", "c"], "a, b + 1 more..."),
        # Bracketed IPv6 stays only with more than two colons: istioctl drops "[fd00::1]".
        (["[fd00:10:96::7fc7]", "[fd00:10:96::7fc7]:80", "x"], "[fd00:10:96::7fc7], x"),
        (["[fd00::1]", "x", "y"], "x, y"),
    ],
)
def test_describe_domains(domains: list[str], expected: str) -> None:
    assert describe_domains(domains) == expected


def _section(name: str) -> bytes:
    return json.dumps({"configs": [{"@type": f"type.googleapis.com/envoy.admin.v3.{name}"}]}).encode()


@pytest.mark.parametrize(
    ("dump", "table", "header"),
    [
        (_section("ClustersConfigDump"), "clusters", "SERVICE FQDN     PORT     SUBSET     DIRECTION     TYPE     DESTINATION RULE\n"),
        (_section("ListenersConfigDump"), "listeners", "ADDRESSES PORT MATCH DESTINATION\n"),
        (_section("RoutesConfigDump"), "routes", "NAME     VHOST NAME     DOMAINS     MATCH     VIRTUAL SERVICE\n"),
        (b'{"configs": []}', "clusters", "SERVICE FQDN     PORT     SUBSET     DIRECTION     TYPE     DESTINATION RULE\n"),
        (b'{"configs": []}', "eds", "NAME     STATUS     LOCALITY     CLUSTER\n"),
        (b'{"configs": []}', "ecds", "ECDS NAME     TYPE\n"),
    ],
)
def test_empty_and_absent_sections_are_empty_tables(dump: bytes, table: str, header: str) -> None:
    """Envoy leaves out of its dump the sections it has nothing for; istioctl calls an empty one
    an error ("no clusters found"). Both are an empty table here."""
    parsed = parse_config_dump(dump, "x")
    render = {
        "clusters": lambda: clusters_table(parsed, ClusterFilter()),
        "listeners": lambda: listeners_table(parsed, ListenerFilter()),
        "routes": lambda: routes_table(parsed, RouteFilter()),
        "eds": lambda: eds_table(parsed, EndpointFilter()),
        "ecds": lambda: ecds_table(parsed),
    }[table]
    assert render() == header


def test_wide_routes_show_every_condition_of_a_match() -> None:
    """istioctl's MATCH column shows the path only, so the demo's `end-user: jason` route read
    as a second `/*`; the wide view adds headers, query parameters and the method."""
    route = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    matches = [
        {"prefix": "/", "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}]},
        {"path": "/login", "headers": [{"name": ":method", "string_match": {"exact": "POST"}},
                                       {"name": "x-env", "string_match": {"prefix": "prod"}, "invert_match": True}]},
        {"prefix": "/api", "headers": [{"name": "x-trace", "present_match": True}, {"name": "x-debug", "present_match": False},
                                       {"name": "x-id", "string_match": {"safe_regex": {"regex": "[0-9]+"}}},
                                       {"name": "x-zone", "string_match": {"suffix": "-a"}},
                                       {"name": "x-tag", "string_match": {"contains": "beta"}},
                                       {"name": "x-size", "range_match": {"start": "1", "end": "10"}}],
         "query_parameters": [{"name": "debug", "string_match": {"exact": "1"}}, {"name": "trace", "present_match": True}]},
        {"prefix": "/"},
    ]
    config = {"@type": route, "name": "80", "virtual_hosts": [{"name": "web:80", "domains": ["web"], "routes": [
        {"match": match, "route": {"cluster": "outbound|80||web.default.svc.cluster.local"}} for match in matches]}]}
    dump = parse_config_dump(json.dumps({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                                                      "dynamic_route_configs": [{"route_config": config}]}]}).encode(), "x")
    rows = [re.split(r" {5,}", line)[3] for line in routes_table(dump, RouteFilter(), wide=True).splitlines()[1:]]
    assert rows == [
        "/* end-user=jason",
        "/login :method=POST x-env!=prod*",
        "/api* x-trace !x-debug x-id~=[0-9]+ x-zone=*-a x-tag=*beta* x-size=[1,10) ?debug=1 ?trace",
        "/*",
    ]
    assert [re.split(r" {5,}", line)[3] for line in routes_table(dump, RouteFilter()).splitlines()[1:]] == [
        "/*", "/login", "/api*", "/*"], "the default table stays istioctl's"
