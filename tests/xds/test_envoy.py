"""End to end: `meshctl serve` (as a subprocess, fake translator) driving real Envoys, with real
HTTP traffic through them. Every test can fail on a dropped request or a missed update."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from envoy_harness import RequestLoop, write_atomic
from world import World, dynamic

import fake_mesh
from meshctl.loopback import wait_until
from meshctl.resources import CLUSTER, LISTENER


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_route_shift_x_y_x_under_traffic_drops_nothing(world: World, delta: bool) -> None:
    world.envoy(delta)
    with RequestLoop(world.url) as loop:
        loop.wait_for_body("x")
        world.route({"y": 100})
        loop.wait_for_body("y")
        world.route({"x": 100})
        loop.wait_for_body("x")
    assert not loop.failures, loop.failures[:5]
    assert loop.bodies()["y"] >= 3
    wait_until(world.serve.synced, 5, what="SYNCED after the shift")


def test_bad_file_is_refused_and_traffic_is_unchanged(world: World) -> None:
    world.envoy()
    serve = world.serve
    with RequestLoop(world.url) as loop:
        write_atomic(world.config / "route.yaml", fake_mesh.dump_yaml([fake_mesh.virtual_service("backend", {"y": 100})])
                     .replace("http:", "htttp:"))
        rejected = wait_until(lambda: serve.json("/debug/configz")["rejected"], 5, what="the bad file refused")
        assert rejected[0]["file"].endswith("route.yaml")
        assert "route.yaml:9: VirtualService default/backend: spec.htttp: unknown field" in rejected[0]["problems"][0]
        loop.wait_for_body("x", count=20)
        world.route({"y": 100})
        loop.wait_for_body("y")
    assert not loop.failures, loop.failures[:5]
    assert not serve.json("/debug/configz")["rejected"]


def test_config_envoy_rejects_shows_error_in_syncz_while_traffic_flows(world: World) -> None:
    envoy = world.envoy()
    serve = world.serve
    with RequestLoop(world.url) as loop:
        world.write_mesh(timeouts={"x": "-5s"})
        cds = wait_until(lambda: serve.statuses()[CLUSTER]["configStatus"] == "ERROR" and serve.statuses()[CLUSTER], 10,
                         what="CDS ERROR in syncz")
        assert "duration" in cds["errorState"]["details"].lower()
        assert envoy.stats("cluster_manager.cds.update_rejected")["cluster_manager.cds.update_rejected"] != "0"
        mesh = world.config / "mesh.yaml"
        assert serve.json("/debug/configz")["rejectedByProxies"] == [{
            "proxy": "web.default", "type": "CDS", "error": cds["errorState"]["details"],
            "resources": [fake_mesh.cluster_name("x")],
            "origins": [f"{mesh}:{_line_of(mesh, 'kind: Service', 'name: x')}: Service default/x",
                        f"{mesh}:{_line_of(mesh, 'kind: Endpoints', 'name: x')}: Endpoints default/x"],
        }]
        log = (world.tmp / "serve.log").read_text()
        assert f'config="{mesh}:' in log and "Service default/x" in log.split("msg=\"NACK:", 1)[1]
        loop.wait_for_body("x", count=20)
    assert not loop.failures, loop.failures[:5]
    assert serve.statuses()[LISTENER]["configStatus"] == "SYNCED"


def test_kill_9_under_traffic_then_restart_resyncs_without_regression(world: World) -> None:
    envoy = world.envoy()
    serve = world.serve
    wait_until(serve.synced, 5, what="SYNCED before the kill")
    before = dynamic(envoy.config_dump(include_eds=True))
    with RequestLoop(world.url) as loop:
        loop.wait_for_body("x")
        serve.kill()
        wait_until(lambda: envoy.stats("control_plane.connected_state")["control_plane.connected_state"] == "0", 5,
                   what="Envoy noticing the control plane is gone")
        loop.wait_for_body("x", count=20)
        serve.start()
        wait_until(serve.synced, 15, what="SYNCED after the restart")
        loop.wait_for_body("x", count=5)
    assert not loop.failures, loop.failures[:5]
    assert envoy.stats("control_plane.connected_state")["control_plane.connected_state"] == "1"
    assert dynamic(envoy.config_dump(include_eds=True)) == before
    with urllib.request.urlopen(serve.url("/metrics"), timeout=5) as response:
        metrics = response.read().decode()
    # The versions matched: no cluster or listener was resent (endpoints and routes always are).
    assert 'meshctl_xds_pushes_total{type="CDS"}' not in metrics
    assert 'meshctl_xds_pushes_total{type="LDS"}' not in metrics
    assert 'meshctl_xds_pushes_total{type="EDS"} 1' in metrics


def test_sotw_and_delta_deliver_the_same_config(world: World) -> None:
    dumps = []
    for delta in (False, True):
        envoy = world.envoy(delta)
        dumps.append(dynamic(envoy.config_dump(include_eds=True), versions=False))
        envoy.stop()
    assert dumps[0] == dumps[1]
    assert dumps[0]["clusters"] and dumps[0]["listeners"] and dumps[0]["routes"] and dumps[0]["endpoints"]


def _line_of(path: Path, kind: str, name: str) -> int:
    """The line of the document (its `apiVersion`) of that kind whose metadata has that name."""
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        if line == kind and any(lines[k].strip() == name for k in range(index, min(index + 4, len(lines)))):
            return index  # the document starts on the line before `kind:` (1-based: this index)
    raise AssertionError(f"no {kind} {name} in {path}")
