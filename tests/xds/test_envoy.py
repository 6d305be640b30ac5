"""End to end: `meshctl serve` (as a subprocess, fake translator) driving real Envoys, with real
HTTP traffic through them. Every test can fail on a dropped request or a missed update."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from envoy_harness import RequestLoop, bootstrap, node_id, write_atomic

from meshctl.loopback import Envoy, free_port, http_get, wait_until
from serve_process import Serve

import fake_mesh
from meshctl.resources import CLUSTER, LISTENER


@pytest.fixture
def world(tmp_path: Path, backends: Any, envoys: Any, processes: Any) -> Iterator[dict[str, Any]]:
    """Backends x and y, a config dir where pod `web` routes `backend` to x, and serve on it."""
    config = tmp_path / "config"
    config.mkdir()
    x, y = backends("x"), backends("y")
    port = free_port()
    write_atomic(config / "mesh.yaml", fake_mesh.dump_yaml(
        [fake_mesh.pod("web", port, "backend"), *fake_mesh.service("x", x.port), *fake_mesh.service("y", y.port)]
    ))
    route(config, {"x": 100})
    serve = Serve(config, processes, tmp_path / "serve.log").start()
    yield {"config": config, "serve": serve, "url": f"http://127.0.0.1:{port}/", "envoys": envoys, "tmp": tmp_path}


def route(config: Path, weights: dict[str, int]) -> None:
    write_atomic(config / "route.yaml", fake_mesh.dump_yaml([fake_mesh.virtual_service("backend", weights)]))


def start_envoy(world: dict[str, Any], delta: bool = False) -> Envoy:
    envoy = world["envoys"](bootstrap(node_id("web"), xds_port=world["serve"].xds_port, admin_port=free_port(), delta=delta))
    envoy.wait_live()
    wait_until(lambda: http_get(world["url"]) == (200, "x"), 10, what="traffic through Envoy to x")
    return envoy


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_route_shift_x_y_x_under_traffic_drops_nothing(world: dict[str, Any], delta: bool) -> None:
    start_envoy(world, delta)
    with RequestLoop(world["url"]) as loop:
        loop.wait_for_body("x")
        route(world["config"], {"y": 100})
        loop.wait_for_body("y")
        route(world["config"], {"x": 100})
        loop.wait_for_body("x")
    assert not loop.failures, loop.failures[:5]
    assert loop.bodies()["y"] >= 3
    wait_until(world["serve"].synced, 5, what="SYNCED after the shift")


def test_bad_file_is_refused_and_traffic_is_unchanged(world: dict[str, Any]) -> None:
    start_envoy(world)
    serve = world["serve"]
    with RequestLoop(world["url"]) as loop:
        write_atomic(world["config"] / "route.yaml", fake_mesh.dump_yaml([fake_mesh.virtual_service("backend", {"y": 100})])
                     .replace("http:", "htttp:"))
        rejected = wait_until(lambda: serve.json("/debug/configz")["rejected"], 5, what="the bad file refused")
        assert rejected[0]["file"].endswith("route.yaml")
        assert "route.yaml:9: VirtualService default/backend: spec.htttp: unknown field" in rejected[0]["problems"][0]
        loop.wait_for_body("x", count=20)
        route(world["config"], {"y": 100})
        loop.wait_for_body("y")
    assert not loop.failures, loop.failures[:5]
    assert not serve.json("/debug/configz")["rejected"]


def test_config_envoy_rejects_shows_error_in_syncz_while_traffic_flows(world: dict[str, Any]) -> None:
    envoy = start_envoy(world)
    serve = world["serve"]
    config = world["config"]
    with RequestLoop(world["url"]) as loop:
        write_atomic(config / "mesh.yaml", (config / "mesh.yaml").read_text().replace(
            "name: x\n  namespace: default\nspec", "name: x\n  namespace: default\n  annotations:\n"
            f"    {fake_mesh.CONNECT_TIMEOUT}: -5s\nspec", 1))
        cds = wait_until(lambda: serve.statuses()[CLUSTER]["configStatus"] == "ERROR" and serve.statuses()[CLUSTER], 10,
                         what="CDS ERROR in syncz")
        assert "duration" in cds["errorState"]["details"].lower()
        assert envoy.stats("cluster_manager.cds.update_rejected")["cluster_manager.cds.update_rejected"] != "0"
        loop.wait_for_body("x", count=20)
    assert not loop.failures, loop.failures[:5]
    assert serve.statuses()[LISTENER]["configStatus"] == "SYNCED"


def test_kill_9_under_traffic_then_restart_resyncs_without_regression(world: dict[str, Any]) -> None:
    envoy = start_envoy(world)
    serve = world["serve"]
    wait_until(serve.synced, 5, what="SYNCED before the kill")
    before = _dynamic(envoy.config_dump(include_eds=True))
    with RequestLoop(world["url"]) as loop:
        loop.wait_for_body("x")
        os.kill(serve.process.pid, signal.SIGKILL)
        serve.process.wait(5)
        wait_until(lambda: envoy.stats("control_plane.connected_state")["control_plane.connected_state"] == "0", 5,
                   what="Envoy noticing the control plane is gone")
        loop.wait_for_body("x", count=20)
        serve.start()
        wait_until(serve.synced, 15, what="SYNCED after the restart")
        loop.wait_for_body("x", count=5)
    assert not loop.failures, loop.failures[:5]
    assert envoy.stats("control_plane.connected_state")["control_plane.connected_state"] == "1"
    assert _dynamic(envoy.config_dump(include_eds=True)) == before
    with urllib.request.urlopen(serve.url("/metrics"), timeout=5) as response:
        metrics = response.read().decode()
    assert "meshctl_xds_pushes_total{" not in metrics  # the versions matched: nothing was resent


def test_sotw_and_delta_deliver_the_same_config(world: dict[str, Any]) -> None:
    dumps = []
    for delta in (False, True):
        envoy = start_envoy(world, delta)
        dumps.append(_dynamic(envoy.config_dump(include_eds=True), versions=False))
        envoy.stop()
    assert dumps[0] == dumps[1]
    assert dumps[0]["clusters"] and dumps[0]["listeners"] and dumps[0]["routes"] and dumps[0]["endpoints"]


def _dynamic(dump: dict[str, Any], versions: bool = True) -> dict[str, list[Any]]:
    """The dynamic resources of an Envoy config dump, without timestamps (and versions, which
    differ by design between SotW, per type, and Delta, per resource)."""
    out: dict[str, list[Any]] = {"clusters": [], "listeners": [], "routes": [], "endpoints": []}
    for section in dump["configs"]:
        kind = section["@type"].rsplit(".", 1)[1]
        if kind == "ClustersConfigDump":
            out["clusters"] = [_strip(c, versions) for c in section.get("dynamic_active_clusters", [])]
        elif kind == "ListenersConfigDump":
            out["listeners"] = [_strip(c["active_state"], versions) for c in section.get("dynamic_listeners", [])]
        elif kind == "RoutesConfigDump":
            out["routes"] = [_strip(c, versions) for c in section.get("dynamic_route_configs", [])]
        elif kind == "EndpointsConfigDump":
            out["endpoints"] = [_strip(c, versions) for c in section.get("dynamic_endpoint_configs", [])]
    return {key: sorted(items, key=json.dumps) for key, items in out.items()}


def _strip(entry: dict[str, Any], versions: bool) -> dict[str, Any]:
    dropped = {"last_updated"} | (set() if versions else {"version_info"})
    return {k: v for k, v in entry.items() if k not in dropped}
