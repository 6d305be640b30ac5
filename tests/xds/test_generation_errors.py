"""A config that validates but fails to generate for one proxy (a value or a translator bug the
generator trips on): that proxy keeps its last good config and stays connected, the failure is
reported with the object it happened on, and every other proxy gets the new config.

The failure is injected into the test translator (fake_mesh.FAIL_GENERATION, or a patched
method), never into product code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from envoy.config.route.v3 import route_pb2
from envoy_harness import RequestLoop
from serve_process import ReadyProbe
from streams import FakeCache, SotwEnvoy
from world import World, make_world

import fake_mesh
from fake_mesh import cluster_name, mesh
from meshctl.loopback import http_get, wait_until
from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE

X, Y = cluster_name("x"), cluster_name("y")


def _subscribed(cache: FakeCache, pod: str, port: int) -> SotwEnvoy:
    envoy = SotwEnvoy(cache, pod)
    for type_url, names in ((CLUSTER, []), (ENDPOINT, [X, Y]), (LISTENER, []), (ROUTE, [f"route-{port}"])):
        [response] = envoy.send(type_url, names)
        assert envoy.ack(response, names) == []
    return envoy


def _failing(documents: list[dict[str, Any]], pod: str, message: str) -> list[dict[str, Any]]:
    for doc in documents:
        if doc["kind"] == "Pod" and doc["metadata"]["name"] == pod:
            doc["metadata"]["annotations"][fake_mesh.FAIL_GENERATION] = message
    return documents


def _route_cluster(response: Any) -> str:
    config = route_pb2.RouteConfiguration.FromString(response.resources[0].value)
    return str(config.virtual_hosts[0].routes[0].route.cluster)


def test_a_proxy_whose_generation_fails_keeps_its_config_and_others_move_on() -> None:
    cache = FakeCache()
    cache.load(mesh("web", "api"))
    web, api = _subscribed(cache, "web", 20000), _subscribed(cache, "api", 20001)
    cache.load(_failing(mesh("web", "api", weights={"y": 100}), "web", "ring size out of range"))
    assert web.wake() == []  # nothing pushed, nothing raised: the stream lives on
    [rds] = api.wake()
    assert _route_cluster(rds) == Y
    failure = web.stream.failure
    assert failure is not None and str(failure) == "ring size out of range"
    assert failure.culprits == ("<memory>:1: Pod default/web",)
    assert cache.metrics.generation_errors.value() == 1 and cache.metrics.failing_proxies.value() == 1
    [answer] = web.send(ROUTE, ["route-20000"])  # a request is answered from the last good config
    assert web.ack(answer, ["route-20000"]) == []
    assert web.stream.resources is not None
    held = route_pb2.RouteConfiguration.FromString(web.stream.resources[ROUTE]["route-20000"].value)
    assert held.virtual_hosts[0].routes[0].route.cluster == X
    assert web.wake() == []  # the same generation is not tried again
    assert cache.metrics.generation_errors.value() == 1
    cache.load(mesh("web", "api", weights={"y": 100}))
    [fixed] = web.wake()
    assert _route_cluster(fixed) == Y and web.stream.failure is None
    assert cache.metrics.failing_proxies.value() == 0


def test_any_exception_a_translator_raises_is_that_proxys_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = FakeCache()
    cache.load(mesh("web"))
    web = _subscribed(cache, "web", 20000)
    cache.load(mesh("web", weights={"y": 100}))

    def bug(self: object, node: object) -> object:
        raise KeyError("subsets")

    monkeypatch.setattr(fake_mesh.FakeMesh, "resources_for", bug)
    assert web.wake() == []
    assert web.stream.failure is not None and str(web.stream.failure) == "KeyError: 'subsets'"
    assert web.stream.failure.culprits == ()
    fresh = SotwEnvoy(cache, "web")  # a proxy whose first config fails waits for one that works
    assert fresh.send(CLUSTER) == [] and fresh.stream.failure is not None


@pytest.fixture
def two(tmp_path: Path, backends: Any, envoys: Any, processes: Any) -> World:
    return make_world(tmp_path, backends, envoys, processes, pods=("web", "api"))


def test_real_envoys_one_failing_generation_keeps_traffic_and_connection(two: World) -> None:
    web, api = two.envoy(pod="web"), two.envoy(pod="api")
    serve = two.serve
    wait_until(lambda: serve.synced("web.default") and serve.synced("api.default"), 5, what="both SYNCED")
    with RequestLoop(two.url_of("web")) as web_loop, RequestLoop(two.url_of("api")) as api_loop, \
            ReadyProbe(serve) as probe:
        two.write_mesh(failing={"web": "minimumRingSize 18446744073709551616 does not fit uint64"})
        two.route({"y": 100})
        api_loop.wait_for_body("y")
        configz = wait_until(lambda: serve.json("/debug/configz")["generationErrors"], 5, what="the failure in configz")
        assert configz == [{
            "proxy": "web.default", "version": configz[0]["version"],
            "error": "minimumRingSize 18446744073709551616 does not fit uint64",
            "resources": [f"{two.config / 'mesh.yaml'}:1: Pod default/web"],
        }]
        web_loop.wait_for_body("x", count=20)  # its last good config keeps serving
        with serve.open("/metrics") as response:
            metrics = response.read().decode()
        assert "meshctl_xds_generation_errors_total 1" in metrics
        assert "meshctl_xds_proxies_failing_generation 1" in metrics
        status, body = http_get(serve.url("/debug/config_dump?proxyID=web.default"))
        assert status == 500 and "mesh.yaml:1: Pod default/web" in body
        two.write_mesh()
        web_loop.wait_for_body("y")
    assert not web_loop.failures and not api_loop.failures, (web_loop.failures[:5], api_loop.failures[:5])
    probe.check()
    assert web.stats("control_plane.connected_state")["control_plane.connected_state"] == "1"
    log = (two.tmp / "serve.log").read_text()
    assert log.count("msg=connected node=sidecar~127.0.0.1~web.default") == 1  # never disconnected
    assert "generation failed, the proxy keeps its last good config" in log and "Traceback" not in log
    assert api.alive()
