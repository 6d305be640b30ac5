"""A control plane killed (-9) and restarted on a config that changed meanwhile: a real Envoy
reconnects reporting the versions it holds, and must end up with the current config, every
cluster active, under traffic that never fails.

Envoy re-creates a cluster whose definition changed and keeps the new one warming until a
ClusterLoadAssignment arrives for it, even when the assignment is the very one it holds; nothing
in the versions it reports on a new stream tells the server that.
"""

from __future__ import annotations

import pytest
from envoy_harness import RequestLoop
from serve_process import ReadyProbe
from world import World

from fake_mesh import cluster_name
from meshctl.loopback import Envoy, wait_until

X = cluster_name("x")


def _warming(envoy: Envoy) -> int:
    return int(envoy.stats("cluster_manager.warming_clusters")["cluster_manager.warming_clusters"])


def _connect_timeout(envoy: Envoy, name: str) -> str:
    for section in envoy.config_dump()["configs"]:
        for entry in section.get("dynamic_active_clusters", []):
            if entry["cluster"]["name"] == name:
                return str(entry["cluster"]["connect_timeout"])
    return ""


def _settled(world: World, envoy: Envoy, timeout: str) -> bool:
    return _connect_timeout(envoy, X) == timeout and _warming(envoy) == 0 and world.serve.synced()


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_a_cluster_changed_while_serve_was_down_leaves_warming_after_the_restart(world: World, delta: bool) -> None:
    envoy = world.envoy(delta)
    wait_until(world.serve.synced, 5, what="SYNCED before the kill")
    with RequestLoop(world.url) as loop:
        world.serve.kill()
        world.write_mesh(timeouts={"x": "2s"})  # the same endpoints, a changed cluster
        world.serve.start()
        with ReadyProbe(world.serve) as probe:
            wait_until(lambda: _settled(world, envoy, "2s"), 10,
                       what="x re-created with the new timeout and active")
            loop.wait_for_body("x", count=5)
    assert not loop.failures, loop.failures[:5]
    probe.check()

