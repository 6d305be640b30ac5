"""`proxy-config` against a real Envoy: its own /config_dump and /clusters, read over --admin."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

import meshctl.cli
from meshctl.inspect.acquire import AdminSource
from meshctl.inspect.configdump import parse_clusters, parse_config_dump
from meshctl.inspect.tables.clusters import ClusterFilter, clusters_table
from meshctl.inspect.tables.eds import eds_table
from meshctl.inspect.tables.endpoints import EndpointFilter, endpoints_table
from meshctl.inspect.tables.listeners import ListenerFilter, listeners_table
from meshctl.inspect.tables.routes import RouteFilter, routes_table
from meshctl.loopback import Envoy

BOOTSTRAP = """
node:
  id: sidecar~10.244.0.22~productpage-v1-abc.default~default.svc.cluster.local
  cluster: productpage.default
  metadata: {ISTIO_VERSION: "1.28.1", ISTIO_PROXY_SHA: "istio-proxy:8f4c1b0e2d"}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: virtualInbound
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
    filter_chains:
    - filter_chain_match: {transport_protocol: raw_buffer, application_protocols: [http/1.0, http/1.1, h2c]}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: inbound_http
          route_config:
            name: inbound|9080||
            virtual_hosts:
            - name: inbound|http|9080
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: "inbound|9080||"}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: passthrough
          cluster: PassthroughCluster
  clusters:
  - name: "inbound|9080||"
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: "inbound|9080||"
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9080}}}}]}]
  - name: PassthroughCluster
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    connect_timeout: 1s
  - name: "outbound|9080||reviews.default.svc.cluster.local"
    type: STATIC
    connect_timeout: 1s
    metadata:
      filter_metadata:
        istio: {config: /apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews}
    load_assignment:
      cluster_name: "outbound|9080||reviews.default.svc.cluster.local"
      endpoints:
      - locality: {region: us-east1, zone: us-east1-b}
        lb_endpoints:
        - endpoint: {address: {socket_address: {address: 10.244.0.31, port_value: 9080}}}
        - endpoint: {address: {socket_address: {address: 10.244.0.32, port_value: 9080}}}
"""


@pytest.fixture(scope="module")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    envoy = Envoy.start(BOOTSTRAP, tmp_path_factory.mktemp("envoy"), "envoy")
    try:
        yield envoy.wait_live(30).admin_url
    finally:
        envoy.stop()


def _rows(table: str) -> list[list[str]]:
    """Cells of each row, split on the runs of spaces the tabwriter puts between columns."""
    return [[cell for cell in line.split("  ") if cell] for line in table.splitlines()[1:]]


def test_tables_from_a_live_dump(admin_url: str) -> None:
    source = AdminSource(admin_url)
    dump = parse_config_dump(source.get("config_dump?include_eds"), admin_url)
    clusters = clusters_table(dump, ClusterFilter())
    assert clusters.splitlines()[0].split() == [
        "SERVICE",
        "FQDN",
        "PORT",
        "SUBSET",
        "DIRECTION",
        "TYPE",
        "DESTINATION",
        "RULE",
    ]
    assert [cell.strip() for cell in _rows(clusters)[2]] == [
        "reviews.default.svc.cluster.local",
        "9080",
        "-",
        "outbound",
        "STATIC",
        "reviews.default",
    ]
    assert [row[0].strip() for row in _rows(clusters)] == [
        "9080",
        "PassthroughCluster",
        "reviews.default.svc.cluster.local",
    ]
    listeners = listeners_table(dump, ListenerFilter())
    assert listeners.splitlines()[1].endswith(" ALL                          PassthroughCluster")
    assert listeners.splitlines()[2].endswith(" Trans: raw_buffer; App: HTTP Cluster: inbound|9080||")
    routes = routes_table(dump, RouteFilter())
    assert routes.splitlines()[1].split() == ["inbound|9080||", "inbound|http|9080", "*", "/*"]
    eds = eds_table(dump, EndpointFilter(cluster="outbound|9080||reviews.default.svc.cluster.local"))
    assert [row[0].strip() for row in _rows(eds)] == ["10.244.0.31:9080", "10.244.0.32:9080"]
    assert all("us-east1/us-east1-b" in line for line in eds.splitlines()[1:])


def test_endpoints_from_live_clusters(admin_url: str) -> None:
    clusters = parse_clusters(AdminSource(admin_url).get("clusters?format=json"), admin_url)
    table = endpoints_table(clusters, EndpointFilter())
    assert [row[0].strip() for row in _rows(table)] == ["10.244.0.31:9080", "10.244.0.32:9080", "127.0.0.1:9080"]
    assert all(row[1].strip() == "HEALTHY" and row[2].strip() == "OK" for row in _rows(table))


def test_cli_reads_narrow_slices_over_admin(admin_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert meshctl.cli.main(["pc", "clusters", "--admin", admin_url, "--fqdn", "reviews"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == [
        "reviews.default.svc.cluster.local",
        "9080",
        "-",
        "outbound",
        "STATIC",
        "reviews.default",
    ]
    assert meshctl.cli.main(["pc", "bootstrap", "--admin", admin_url, "-o", "short"]) == 0
    version = capsys.readouterr().out.splitlines()
    assert version[:2] == ["Istio Version:       1.28.1", "Istio Proxy Version: 8f4c1b0e2d"]
    assert version[2].startswith("Envoy Version:       1.") and "/RELEASE/" in version[2]
    expected = {
        "listeners": "127.0.0.1 0    ALL",
        "routes": "inbound|http|9080",
        "eds": "10.244.0.32:9080     HEALTHY     us-east1/us-east1-b",
        "endpoints": "10.244.0.32:9080     HEALTHY     OK",
        "all": "cluster/PassthroughCluster",
    }
    for command, text in expected.items():
        assert meshctl.cli.main(["pc", command, "--admin", admin_url]) == 0, command
        assert text in capsys.readouterr().out, command
    assert meshctl.cli.main(["pc", "secret", "--admin", admin_url]) == 0
    assert capsys.readouterr().out == "No active or warming secrets found.\n"
    assert meshctl.cli.main(["pc", "log", "--admin", admin_url, "--level", "admin:debug"]) == 0
    assert f"{admin_url}:\nactive loggers:\n" in capsys.readouterr().out
    with urllib.request.urlopen(urllib.request.Request(f"{admin_url}/logging", method="POST"), timeout=5) as response:
        assert "  admin: debug\n" in response.read().decode()


BARE = """
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  clusters:
  - name: only
    type: STATIC
    connect_timeout: 1s
    load_assignment: {cluster_name: only}
"""


def test_empty_sections_are_empty_tables(admin_url: str, tmp_path_factory: pytest.TempPathFactory,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Envoy answers 400 to a mask that selects no section (no ECDS; no routes without an HTTP
    listener), and leaves empty sections out of a full dump: none of that is an error to show."""
    assert meshctl.cli.main(["pc", "ecds", "--admin", admin_url]) == 0
    assert capsys.readouterr() == ("ECDS NAME     TYPE\n", "")
    assert meshctl.cli.main(["pc", "ecds", "--admin", admin_url, "-o", "json"]) == 0
    assert capsys.readouterr().out == "{}\n"
    envoy = Envoy.start(BARE, tmp_path_factory.mktemp("bare"), "bare")
    try:
        bare = envoy.wait_live(30).admin_url
        for command, header in (("routes", "NAME     VHOST NAME     DOMAINS     MATCH     VIRTUAL SERVICE\n"),
                                ("listeners", "ADDRESSES PORT MATCH DESTINATION\n"),
                                ("ecds", "ECDS NAME     TYPE\n")):
            assert meshctl.cli.main(["pc", command, "--admin", bare]) == 0, command
            assert capsys.readouterr() == (header, ""), command
        assert meshctl.cli.main(["pc", "all", "--admin", bare]) == 0
        out, err = capsys.readouterr()
        assert "ADDRESSES PORT MATCH DESTINATION\n\nNAME     VHOST NAME     DOMAINS     MATCH     VIRTUAL SERVICE\n\n" in out
        assert err == ""
    finally:
        envoy.stop()
