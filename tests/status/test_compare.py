"""istioctl's sync diff and the semantic diff, on hand-written dumps.

The control plane side is what `istio.io/debug/config_dump` returns (dump sections as protobuf
Anys); the Envoy side is /config_dump JSON as Envoy writes it, with the bookkeeping istioctl
ignores (versions, timestamps, draining listeners, warming ones, static resources).
"""

from __future__ import annotations

import copy
import difflib
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from status_support import assert_golden, dump_json

from meshctl.inspect.configdump import parse_config_dump
from meshctl.status.compare import compare, comparison_text, normalise, render, routes_loaded, unified_diff
from meshctl.status.sections import ControlPlaneDump, EnvoyDump
from meshctl.status.semantic import ABSENT, report_data, report_text, semantic_diff

CLUSTERS = "type.googleapis.com/envoy.admin.v3.ClustersConfigDump"
LISTENERS = "type.googleapis.com/envoy.admin.v3.ListenersConfigDump"
ROUTES = "type.googleapis.com/envoy.admin.v3.RoutesConfigDump"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_CONFIG = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"


def cluster(name: str, timeout: str = "10s") -> dict[str, Any]:
    return {
        "@type": CLUSTER, "name": name, "type": "EDS", "connect_timeout": timeout,
        "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}, "service_name": name},
        "circuit_breakers": {"thresholds": [{"max_connections": 4294967295, "max_retries": 4294967295}]},
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}},
        "metadata": {"filter_metadata": {"istio": {"config": "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews"}}},
    }  # fmt: skip


def listener(name: str, port: int, filters: list[str]) -> dict[str, Any]:
    http_filters = [{"name": f.rsplit(".", 1)[-1], "typed_config": {"@type": f}} for f in filters]
    return {
        "@type": LISTENER, "name": name,
        "address": {"socket_address": {"address": "127.0.0.10", "port_value": port}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": HCM, "stat_prefix": name, "rds": {"config_source": {"ads": {}}, "route_config_name": str(port)},
            "http_filters": http_filters}}]}],
    }  # fmt: skip


def route_config(name: str, hosts: list[tuple[str, list[str]]]) -> dict[str, Any]:
    return {
        "@type": ROUTE_CONFIG, "name": name,
        "virtual_hosts": [
            {"name": host, "domains": [host, host.split(".")[0]],
             "routes": [{"name": route, "match": {"prefix": f"/{route}"}, "route": {"cluster": f"outbound|{name}||{host}"}}
                        for route in routes]}
            for host, routes in hosts
        ],
    }  # fmt: skip


def control_plane_sections() -> list[dict[str, Any]]:
    """What a control plane would send a proxy: sections in istiod's order, per-resource versions."""
    return [
        {"@type": CLUSTERS, "version_info": "cp-1", "dynamic_active_clusters": [
            {"version_info": f"v-{name}", "cluster": cluster(name)}
            for name in ("outbound|9080||reviews.default.svc.cluster.local", "BlackHoleCluster",
                         "outbound|9080|v1|reviews.default.svc.cluster.local")]},
        {"@type": LISTENERS, "dynamic_listeners": [
            {"name": "127.0.0.10_9080", "active_state": {"version_info": "v-l", "listener": listener("127.0.0.10_9080", 9080, [FAULT, ROUTER])}}]},
        {"@type": ROUTES, "dynamic_route_configs": [
            {"version_info": "v-r", "route_config": route_config("9080", [("reviews.default.svc.cluster.local", ["jason", "all"]),
                                                                        ("details.default.svc.cluster.local", ["all"])])}]},
    ]  # fmt: skip


def envoy_sections() -> list[dict[str, Any]]:
    """The same config as Envoy dumps it: other versions, timestamps, other order, extra state."""
    stamp = "2026-06-01T10:00:00.123456789Z"
    sections = control_plane_sections()
    clusters, listeners, routes = copy.deepcopy(sections)
    clusters["version_info"] = "envoy-7"
    clusters["dynamic_active_clusters"].reverse()
    for entry in clusters["dynamic_active_clusters"]:
        entry.update(version_info="envoy-7", last_updated=stamp)
    clusters["static_clusters"] = [{"cluster": {"@type": CLUSTER, "name": "xds-grpc", "type": "STATIC"}}]
    [active] = listeners["dynamic_listeners"]
    active["active_state"].update(version_info="envoy-7", last_updated=stamp)
    active["draining_state"] = {"version_info": "envoy-6", "listener": listener("127.0.0.10_9080", 9080, [ROUTER])}
    listeners["dynamic_listeners"].append({"name": "warming", "warming_state": {"listener": listener("warming", 1, [ROUTER])}})
    [entry] = routes["dynamic_route_configs"]
    entry.update(version_info="envoy-7", last_updated=stamp)
    entry["route_config"]["virtual_hosts"].reverse()
    bootstrap = {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {"node": {"id": "x"}}}
    secrets = {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"}
    return [bootstrap, clusters, listeners, routes, secrets]  # fmt: skip


def control_plane(sections: list[dict[str, Any]]) -> ControlPlaneDump:
    """A control plane's answer carrying these sections."""
    response = discovery_pb2.DiscoveryResponse(type_url="istio.io/debug/config_dump")
    response.resources.extend(parse_config_dump(dump_json(sections), "control plane").message.configs)
    return ControlPlaneDump(response)


def envoy(sections: list[dict[str, Any]]) -> EnvoyDump:
    return EnvoyDump(dump_json(sections), "envoy.json")


def test_bookkeeping_is_not_a_difference() -> None:
    cp, ev = control_plane(control_plane_sections()), envoy(envoy_sections())
    diffs = compare(cp, ev)
    assert [d.matches for d in diffs] == [True, True, True]
    loaded = routes_loaded(ev)
    assert loaded == datetime(2026, 6, 1, 10, 0, 0, 123456, tzinfo=UTC)
    text = comparison_text(diffs, loaded.astimezone(timezone(timedelta(hours=2), "CEST")))
    assert text == "Clusters Match\nListeners Match\nRoutes Match (RDS last loaded at Mon, 01 Jun 2026 12:00:00 CEST)\n"
    assert all(report.matches for report in semantic_diff(cp, ev))
    assert report_text(semantic_diff(cp, ev)) == "Clusters Match\nListeners Match\nRoutes Match\n"


def test_a_dump_written_by_protojson_compares_the_same() -> None:
    from google.protobuf import json_format

    parsed = envoy(envoy_sections()).parsed
    camel = json_format.MessageToJson(parsed.message, descriptor_pool=parsed.pool).encode()
    assert b'"dynamicActiveClusters"' in camel and b'"lastUpdated"' in camel
    cp, ev = control_plane(control_plane_sections()), EnvoyDump(camel, "camel.json")
    assert [d.matches for d in compare(cp, ev)] == [True, True, True]
    assert all(report.matches for report in semantic_diff(cp, ev))
    assert routes_loaded(ev) == datetime(2026, 6, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_normalisation_is_istioctls() -> None:
    ev = envoy(envoy_sections()).parsed
    clusters = json.loads(render(normalise(ev, "Clusters"), ev))
    assert list(clusters) == ["dynamicActiveClusters"]
    assert [entry["cluster"]["name"] for entry in clusters["dynamicActiveClusters"]] == [
        "BlackHoleCluster",
        "outbound|9080|v1|reviews.default.svc.cluster.local",  # byte order, as Go compares: "v" < "|"
        "outbound|9080||reviews.default.svc.cluster.local",
    ]
    assert all(set(entry) == {"cluster"} for entry in clusters["dynamicActiveClusters"])
    listeners = json.loads(render(normalise(ev, "Listeners"), ev))
    [only] = listeners["dynamicListeners"]
    assert set(only) == {"activeState"} and set(only["activeState"]) == {"listener"}
    routes = json.loads(render(normalise(ev, "Routes"), ev))
    [entry] = routes["dynamicRouteConfigs"]
    assert set(entry) == {"routeConfig"}
    assert [host["name"] for host in entry["routeConfig"]["virtualHosts"]] == [
        "details.default.svc.cluster.local", "reviews.default.svc.cluster.local"
    ]  # fmt: skip
    text = render(normalise(ev, "Clusters"), ev)
    assert text.startswith('{\n   "dynamicActiveClusters": [\n      {\n         "cluster": {\n            "@type": ')


def tampered() -> list[dict[str, Any]]:
    sections = envoy_sections()
    clusters = sections[1]["dynamic_active_clusters"]
    [subset] = [e for e in clusters if e["cluster"]["name"].startswith("outbound|9080|v1|")]
    subset["cluster"]["connect_timeout"] = "5s"
    return sections


def test_a_tampered_cluster_shows_as_istioctl_prints_it() -> None:
    diffs = compare(control_plane(control_plane_sections()), envoy(tampered()))
    assert [d.matches for d in diffs] == [False, True, True]
    text = comparison_text(diffs, None)
    assert_golden("diff_tampered_cluster.txt", text)
    assert text.startswith("Clusters Don't Match\n--- Istiod Clusters\n+++ Envoy Clusters\n@@ ")
    assert '-            "connectTimeout": "10s",\n+            "connectTimeout": "5s",\n' in text
    assert text.endswith("\n\nListeners Match\nRoutes Match\n")


def test_semantic_diff_names_resources_and_fields() -> None:
    sections = tampered()
    clusters, listeners, routes = sections[1], sections[2], sections[3]
    clusters["dynamic_active_clusters"] = [e for e in clusters["dynamic_active_clusters"] if e["cluster"]["name"] != "BlackHoleCluster"]
    clusters["dynamic_active_clusters"].append({"cluster": cluster("outbound|9090||extra.default.svc.cluster.local")})
    http_filters = listeners["dynamic_listeners"][0]["active_state"]["listener"]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    http_filters.reverse()
    hosts = routes["dynamic_route_configs"][0]["route_config"]["virtual_hosts"]
    hosts.reverse()
    hosts[0]["domains"].reverse()
    reports = semantic_diff(control_plane(control_plane_sections()), envoy(sections))
    assert [report.matches for report in reports] == [False, False, True], "domain and virtual host order do not matter"
    assert_golden("semantic_tampered.txt", report_text(reports))
    data = report_data(reports)
    assert data["clusters"]["onlyInControlPlane"] == ["BlackHoleCluster"]
    assert data["clusters"]["onlyInEnvoy"] == ["outbound|9090||extra.default.svc.cluster.local"]
    assert data["clusters"]["changed"] == {"outbound|9080|v1|reviews.default.svc.cluster.local": [
        {"path": "cluster.connect_timeout", "controlPlane": "10s", "envoy": "5s"}]}  # fmt: skip
    assert ("active_state.listener.filter_chains[0].filters[0].typed_config.http_filters[0]: (absent) -> "
            '{"name":"Router"') in report_text(reports), "the router moved before the fault filter"


def test_route_order_matters_to_the_semantic_diff() -> None:
    sections = envoy_sections()
    hosts = sections[3]["dynamic_route_configs"][0]["route_config"]["virtual_hosts"]
    [reviews] = [host for host in hosts if host["name"].startswith("reviews")]
    reviews["routes"].reverse()
    [_, _, routes] = semantic_diff(control_plane(control_plane_sections()), envoy(sections))
    [(name, changes)] = routes.changed
    assert name == "9080"
    # two routes swapped: the second moved first (Envoy's routes list, position by position)
    first, second = reviews["routes"]
    assert [(change.path, change.before, change.after) for change in changes] == [
        ('route_config.virtual_hosts["reviews.default.svc.cluster.local"].routes[0]', ABSENT, first),
        ('route_config.virtual_hosts["reviews.default.svc.cluster.local"].routes[1]', first, ABSENT),
    ]  # fmt: skip


def test_a_missing_section_is_a_difference() -> None:
    """istioctl diffs the error text against the other side; the semantic diff sees no resources."""
    cp = control_plane(control_plane_sections()[:2])
    diffs = compare(cp, envoy(envoy_sections()))
    assert [d.matches for d in diffs] == [True, True, False]
    assert diffs[2].diff.startswith(
        "--- Istiod Routes\n+++ Envoy Routes\n@@ -1 +1,57 @@\n"
        "-config dump has no configuration type type.googleapis.com/envoy.admin.v3.RoutesConfigDump\n+{\n"
    )
    [_, _, routes] = semantic_diff(cp, envoy(envoy_sections()))
    assert report_text([routes]) == "Routes Don't Match (1 only in Envoy)\n  + 9080 (only in Envoy)\n"


def test_types_this_process_cannot_read_show_as_their_type_only() -> None:
    unknown = "type.googleapis.com/istio.stats.PluginConfig"
    sections = control_plane_sections()
    ours = sections[1]["dynamic_listeners"][0]["active_state"]["listener"]
    http_filters = ours["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    http_filters.insert(0, {"name": "istio.stats", "typed_config": {"@type": unknown, "x": 1}})
    theirs = envoy_sections()
    theirs[2]["dynamic_listeners"][0]["active_state"]["listener"] = copy.deepcopy(ours)
    assert [d.matches for d in compare(control_plane(sections), envoy(theirs))] == [True, True, True]
    assert all(report.matches for report in semantic_diff(control_plane(sections), envoy(theirs)))
    changed = theirs[2]["dynamic_listeners"][0]["active_state"]["listener"]
    changed["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]["typed_config"]["x"] = 2
    assert [d.matches for d in compare(control_plane(sections), envoy(theirs))] == [True, True, True], (
        "what the type holds is unknown on both sides, as in istioctl"
    )


def random_edit(seed: int, size: int) -> tuple[str, str]:
    """A text of repetitive JSON-like lines and a copy with a few insertions, deletions, changes."""
    rng = random.Random(seed)
    lines = [f'   "{rng.choice("abcdef")}": {rng.randint(0, 3)},' for _ in range(rng.randint(0, size))]
    edited = list(lines)
    for _ in range(rng.randint(0, 4)):
        position = rng.randint(0, len(edited))
        action = rng.choice(("insert", "delete", "change"))
        if action == "insert" or not edited:
            edited.insert(position, f'   "new": {rng.randint(0, 9)},')
        elif action == "delete":
            del edited[min(position, len(edited) - 1)]
        else:
            edited[min(position, len(edited) - 1)] += " changed"
    return "\n".join(lines), "\n".join(edited)


def split(text: str) -> list[str]:
    return [line + "\n" for line in text.split("\n")]


@pytest.mark.parametrize("seed", range(30))
def test_unified_diff_is_difflibs(seed: int) -> None:
    before, after = random_edit(seed, 600)
    expected = "".join(difflib.unified_diff(split(before), split(after), "Istiod Clusters", "Envoy Clusters", n=7))
    assert unified_diff(before, after, "Clusters") == expected


def apply(diff: str, before: list[str]) -> list[str]:
    """Apply a unified diff to `before` (hunks in order; context lines must match)."""
    out, position = [], 0
    lines = diff.splitlines(keepends=True)[2:]
    index = 0
    while index < len(lines):
        start = int(lines[index].split()[1][1:].split(",")[0])
        length = int(lines[index].split()[1].split(",")[1]) if "," in lines[index].split()[1] else 1
        start = start - 1 if length else start
        out += before[position:start]
        position = start
        index += 1
        while index < len(lines) and not lines[index].startswith("@@"):
            tag, text = lines[index][0], lines[index][1:]
            if tag in " -":
                assert before[position] == text
                position += 1
            if tag in " +":
                out.append(text)
            index += 1
    return out + before[position:]


@pytest.mark.parametrize("seed", range(10))
def test_a_big_diff_is_a_valid_unified_diff(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the size difflib can handle, the diff still turns one text into the other."""
    monkeypatch.setattr("meshctl.status.compare.EXACT_DIFF_LINES", 50)
    before, after = random_edit(seed, 600)
    diff = unified_diff(before, after, "Clusters")
    assert apply(diff, split(before)) == split(after)
    assert bool(diff) == (before != after)


def _spelled_differently(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same values in other JSON spellings protobuf reads alike: a double written as an
    integer, an integer as a float, an int64 as a number, a duration with milliseconds, an enum
    by number, a null for an unset field."""
    clusters, routes = sections[1], sections[3]
    for entry in clusters["dynamic_active_clusters"]:
        entry["cluster"].update(connect_timeout="10.000s", type=3, per_connection_buffer_limit_bytes=32768.0,
                                common_lb_config={"healthy_panic_threshold": {"value": 100}}, dns_lookup_family=None)
    [host] = [h for h in routes["dynamic_route_configs"][0]["route_config"]["virtual_hosts"] if h["name"].startswith("reviews")]
    host["routes"][0]["match"]["headers"] = [{"name": "x-size", "range_match": {"start": 100, "end": 200}}]
    return sections


def _as_control_plane_sends_it(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    clusters, routes = sections[0], sections[2]
    for entry in clusters["dynamic_active_clusters"]:
        entry["cluster"].update(per_connection_buffer_limit_bytes=32768, common_lb_config={"healthy_panic_threshold": {"value": 100.0}})
    [host] = [h for h in routes["dynamic_route_configs"][0]["route_config"]["virtual_hosts"] if h["name"].startswith("reviews")]
    host["routes"][0]["match"]["headers"] = [{"name": "x-size", "range_match": {"start": "100", "end": "200"}}]
    return sections


def test_the_semantic_diff_compares_values_by_their_protobuf_type() -> None:
    cp = control_plane(_as_control_plane_sends_it(control_plane_sections()))
    assert all(report.matches for report in semantic_diff(cp, envoy(_spelled_differently(envoy_sections()))))
    sections = _spelled_differently(envoy_sections())
    sections[1]["dynamic_active_clusters"][0]["cluster"]["connect_timeout"] = "3.500s"
    [clusters, *others] = semantic_diff(cp, envoy(sections))
    assert all(report.matches for report in others)
    [(name, changes)] = clusters.changed
    assert [(c.path, c.before, c.after) for c in changes] == [("cluster.connect_timeout", "10s", "3.500s")], (
        "the one real difference, in protobuf's own spelling; none of the others")


def test_a_zero_duration_is_not_an_absent_one() -> None:
    """Presence is protobuf's: a route's `timeout: 0s` turns Envoy's 15 s default off, so a
    proxy whose route lacks it is not in sync, however alike "0s" and nothing look."""
    sections = control_plane_sections()
    route = sections[2]["dynamic_route_configs"][0]["route_config"]["virtual_hosts"][0]["routes"][0]
    route["route"]["timeout"] = "0s"
    [_, _, routes] = semantic_diff(control_plane(sections), envoy(envoy_sections()))
    [(name, changes)] = routes.changed
    assert [(c.path, c.before, repr(c.after)) for c in changes] == [
        ('route_config.virtual_hosts["reviews.default.svc.cluster.local"].routes[0].route.timeout', "0s", "(absent)")]


def test_a_dump_round_tripped_through_yaml_compares_equal(tmp_path: Any) -> None:
    import yaml

    from meshctl.formats import to_yaml

    text = dump_json(envoy_sections())
    as_yaml = to_yaml(json.loads(text)).encode()
    back = json.dumps(yaml.safe_load(as_yaml)).encode()
    cp = control_plane(control_plane_sections())
    for data in (back, as_yaml):
        side = EnvoyDump(data, "dump")
        assert all(report.matches for report in semantic_diff(cp, side))
        assert [d.matches for d in compare(cp, side)] == [True, True, True]
