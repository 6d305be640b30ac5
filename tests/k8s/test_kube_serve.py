"""`meshctl serve --kubernetes` end to end: the cluster changed through the API (the official
client over real HTTP to the emulator), serve subprocesses watching it, a real Envoy sidecar
routing real loopback traffic by what the cluster says."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator import BackgroundEmulator
from envoy_harness import RequestLoop
from kube_mesh import KubeMesh, KubeServe

from meshctl.kube.apply import apply_objects
from meshctl.loopback import http_get, wait_until

JASON = {"end-user": "jason"}


@pytest.fixture
def mesh(tmp_path: Path, api_server: BackgroundEmulator, kubeconfig: str, processes: Any) -> Iterator[KubeMesh]:
    running = KubeMesh(tmp_path, api_server, kubeconfig, processes)
    try:
        yield running.start(endpoints=("v1", "v2"))
    finally:
        running.stop()


def test_envoy_routes_and_balances_by_what_the_cluster_says(mesh: KubeMesh, api_server: BackgroundEmulator) -> None:
    # the VirtualService: everyone to v1, jason to v2
    assert mesh.answers(10) == {"reviews-v1"}
    assert {mesh.request(JASON)[1] for _ in range(5)} == {"reviews-v2"}
    # route everyone to v3, which the EndpointSlice does not list yet: no healthy upstream
    mesh.route({"v3": 100})
    wait_until(lambda: mesh.request()[0] == 503, 10, what="v3 routed but not an endpoint yet")
    # scale the slice: Envoy's endpoints follow, and v3 answers
    mesh.set_endpoints(("v1", "v2", "v3"))
    wait_until(lambda: mesh.eds_addresses("v3") == mesh.backend_ips("v3"), 10, what="v3's endpoint in EDS")
    assert mesh.eds_addresses() == mesh.backend_ips("v1", "v2", "v3")
    assert mesh.answers(10) == {"reviews-v3"}
    # delete the VirtualService: the default route balances over every endpoint of the slice
    mesh.unroute()
    wait_until(lambda: mesh.answers(30) == {"reviews-v1", "reviews-v2", "reviews-v3"}, 10,
               what="the default route over v1-v3")
    # v1 leaves the slice (unready) while every watch is cut with 410 Gone: serve lists again
    # and loses nothing
    assert api_server.emulator is not None
    api_server.emulator.cut_watches(gone=True)
    mesh.set_endpoints(("v1", "v2", "v3"), unready=("v1",))
    wait_until(lambda: mesh.eds_addresses() == mesh.backend_ips("v2", "v3"), 10, what="v1 gone from EDS")
    assert mesh.answers(20) == {"reviews-v2", "reviews-v3"}
    assert all(replica.synced("productpage-v1.default") for replica in mesh.replicas)


def test_an_invalid_virtualservice_in_the_cluster_is_reported_and_skipped(mesh: KubeMesh) -> None:
    (serve,) = mesh.replicas
    broken = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
              "metadata": {"name": "ratings", "namespace": "default"},
              "spec": {"hosts": ["ratings"], "http": [{"route": [{"destination": {"host": "ratings"},
                                                                  "weight": "most"}]}]}}
    apply_objects(mesh.client, [broken])
    problem = ("kubernetes: VirtualService default/ratings: spec.http[0].route[0].weight: "
               "expected an integer, got a string")
    refused = wait_until(lambda: serve.json("/debug/configz")["rejected"], 10, what="the VirtualService refused")
    assert refused == [{"file": "VirtualService default/ratings", "problems": [problem]}]
    metrics = http_get(serve.url("/metrics"))[1]
    assert 'meshctl_config_rejected{input="VirtualService default/ratings"} 1' in metrics
    assert problem in serve.log.read_text()
    # the rest keeps serving, and keeps changing
    assert mesh.answers(10) == {"reviews-v1"}
    mesh.route({"v2": 100})
    wait_until(lambda: mesh.answers(5) == {"reviews-v2"}, 10, what="the next change despite the refusal")
    # fixed in the cluster: accepted, nothing refused any more
    broken["spec"]["http"][0]["route"][0]["weight"] = 100  # type: ignore[index]
    apply_objects(mesh.client, [broken])
    wait_until(lambda: not serve.json("/debug/configz")["rejected"], 10, what="the fix accepted")
    assert "VirtualService default/ratings" not in http_get(serve.url("/metrics"))[1]


def test_a_change_is_pushed_only_to_the_proxies_whose_config_it_changes(mesh: KubeMesh, tmp_path: Path) -> None:
    from meshctl.generate.bootstrap import ads_bootstrap
    from meshctl.loopback import Envoy, free_port
    from meshctl.model.proxy import INTERCEPTION_NONE, Proxy

    apply_objects(mesh.client, [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely-v1", "namespace": "other",
                                                         "labels": {"app": "lonely"}},
         "spec": {"containers": [{"name": "app"}]},
         "status": {"phase": "Running", "podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "default", "namespace": "other"},
         "spec": {"egress": [{"hosts": ["./*"]}]}},
    ])
    (serve,) = mesh.replicas
    proxy = Proxy(id="lonely-v1.other", namespace="other", ip="127.0.0.1", dns_domain="other.svc.cluster.local",
                  labels={"app": "lonely"}, interception=INTERCEPTION_NONE)
    lonely = Envoy.start(ads_bootstrap(proxy, "127.0.0.1", serve.xds_port, admin_port=free_port()), tmp_path, "lonely")
    try:
        lonely.wait_live(30)
        wait_until(lambda: (statuses := serve.statuses("lonely-v1.other")) and
                   all(status["configStatus"] == "SYNCED" for status in statuses.values()),
                   10, what="the lonely sidecar SYNCED (its clusters and listeners: it has nothing else)")
        assert mesh.envoy is not None

        def updates(envoy: Envoy) -> int:
            return sum(int(value) for value in envoy.stats("update_attempt").values() if value.isdigit())

        before = updates(lonely), updates(mesh.envoy)
        mesh.set_endpoints(("v1", "v2", "v3"))
        wait_until(lambda: mesh.eds_addresses() == mesh.backend_ips(), 10, what="productpage's endpoints")
        wait_until(lambda: serve.synced("productpage-v1.default"), 10, what="productpage SYNCED")
        assert updates(mesh.envoy) > before[1]
        assert updates(lonely) == before[0]  # reviews is not in its scope: nothing was sent to it
    finally:
        lonely.stop()


def _route_hosts(mesh: KubeMesh, route: str) -> set[str]:
    """The virtual hosts of a route in the real Envoy's config dump."""
    assert mesh.envoy is not None
    dump = json.loads(mesh.envoy.admin("config_dump"))
    return {vhost["name"] for section in dump["configs"] for config in section.get("dynamic_route_configs", ())
            if config["route_config"]["name"] == route for vhost in config["route_config"].get("virtual_hosts", ())}


def test_the_istio_configmap_is_the_mesh_config_and_a_bad_one_is_refused(mesh: KubeMesh) -> None:
    """What istiod does with its `istio` ConfigMap: REGISTRY_ONLY there, and a request for a host
    the registry lacks gets the block_all 502 from the real Envoy; a broken edit is refused by
    name, line and field, the last good mesh config keeps serving."""
    from meshctl.demo.runtime import request

    (serve,) = mesh.replicas
    assert "allow_any" in _route_hosts(mesh, "9080")  # istiod's default, ALLOW_ANY

    def configmap(text: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
                "data": {"mesh": text}}

    apply_objects(mesh.client, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
                                configmap("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n")])
    wait_until(lambda: "block_all" in _route_hosts(mesh, "9080"), 10, what="REGISTRY_ONLY from the ConfigMap")
    assert request(mesh.layout.clients[0].bind, host="nowhere.example")[0] == 502
    apply_objects(mesh.client, [configmap("outboundTrafficPolicy:\n  mode: ALLOW_ALL\n")])
    problem = ("kubernetes: ConfigMap istio-system/istio: data.mesh:2: outboundTrafficPolicy.mode: invalid value "
               "'ALLOW_ALL': must be one of REGISTRY_ONLY, ALLOW_ANY, ALLOW_ANY_DYNAMIC_DNS")
    refused = wait_until(lambda: serve.json("/debug/configz")["rejected"], 10, what="the mesh config refused")
    assert refused == [{"file": "ConfigMap istio-system/istio", "problems": [problem]}]
    assert problem in serve.log.read_text()
    assert "block_all" in _route_hosts(mesh, "9080") and mesh.answers(5) == {"reviews-v1"}


@pytest.fixture
def replicated(tmp_path: Path, api_server: BackgroundEmulator, kubeconfig: str, processes: Any) -> Iterator[KubeMesh]:
    """The mesh served by two replicas; the sidecar's bootstrap lists both."""
    running = KubeMesh(tmp_path, api_server, kubeconfig, processes, replicas=2,
                       flags=("--leader-lease", "default/istiod-leader"))
    try:
        yield running.start(endpoints=("v1", "v2", "v3"))
    finally:
        running.stop()


PROXY = "productpage-v1.default"


def connected_to(mesh: KubeMesh) -> tuple[KubeServe, KubeServe]:
    """(the replica the sidecar's stream is on, the other one)."""
    first, second = mesh.replicas
    wait_until(lambda: first.synced(PROXY) or second.synced(PROXY), 10, what="the sidecar SYNCED on a replica")
    return (first, second) if first.synced(PROXY) else (second, first)


def test_kill_9_the_replica_the_sidecar_is_on_and_it_carries_on_with_the_other(replicated: KubeMesh) -> None:
    mesh = replicated
    wait_until(lambda: all(r.json("/debug/configz")["generation"] for r in mesh.replicas), 10, what="both replicas")
    dead, survivor = connected_to(mesh)
    with RequestLoop(mesh.url, headers=mesh.host_header) as loop:
        loop.wait_for_body("reviews-v1")
        assert dead.process is not None
        dead.process.kill()  # SIGKILL: no goodbye, the connection just drops
        dead.process.wait(10)
        wait_until(lambda: survivor.synced(PROXY), 20, what="the sidecar SYNCED on the survivor")
        mesh.route({"v3": 100})  # made after the kill: only the survivor can deliver it
        loop.wait_for_body("reviews-v3", timeout=20)
        wait_until(lambda: survivor.synced(PROXY), 10, what="SYNCED after the change")
    assert not loop.failures, loop.failures[:5]
    assert loop.bodies()["reviews-v1"] >= 3 and loop.bodies()["reviews-v3"] >= 3


def test_sigterm_drains_a_replica_its_sidecar_moves_over_and_it_exits_in_time(replicated: KubeMesh) -> None:
    mesh = replicated
    leaving, staying = connected_to(mesh)
    assert leaving.process is not None
    with RequestLoop(mesh.url, headers=mesh.host_header) as loop:
        loop.wait_for_body("reviews-v1")
        started = time.monotonic()
        leaving.process.send_signal(signal.SIGTERM)
        assert leaving.process.wait(10) == 0
        took = time.monotonic() - started
        wait_until(lambda: staying.synced(PROXY), 10, what="the sidecar SYNCED on the other replica")
        mesh.route({"v2": 100})
        loop.wait_for_body("reviews-v2", timeout=20)
    assert not loop.failures, loop.failures[:5]
    assert took < 3.0, f"the replica took {took:.1f}s to leave; its streams ended at once, so should it"
    log = leaving.log.read_text()
    assert "disconnected" in log and "stopped" in log


def test_one_replica_leads_and_a_stopped_leader_hands_over(replicated: KubeMesh) -> None:
    first, second = replicated.replicas
    wait_until(lambda: first.leading() != second.leading(), 20, what="exactly one leader")
    leader, other = (first, second) if first.leading() else (second, first)
    assert leader.process is not None
    leader.process.send_signal(signal.SIGTERM)  # a clean stop releases the Lease
    assert leader.process.wait(10) == 0
    wait_until(other.leading, 10, what="the other replica leading")
