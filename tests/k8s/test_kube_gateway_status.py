"""The Gateway API status serve writes, against the emulator over real HTTP with the official
client: the Kubernetes source feeding the status writer as serve wires them, the cluster
changed through the API as kubectl would change it, the status read back from the API."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from emulator import MeshEmulator
from kube_mesh import KubeServe

from meshctl.hostnames import DEFAULT_DOMAIN
from meshctl.kube.apply import apply_objects, delete_objects
from meshctl.kube.client import KubeClient, load_client
from meshctl.kube.gatewayclasses import DefaultClasses
from meshctl.kube.gatewaystatus import GatewayStatusWriter, StatusReporting
from meshctl.kube.resources import CREDENTIALS, GATEWAY_API, REGISTRY
from meshctl.kube.rest import call_json
from meshctl.loopback import wait_until
from meshctl.sources.kubernetes import ORIGIN, KubernetesSource

GROUP = "gateway.networking.k8s.io"
GATEWAY = {"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"gatewayClassName": "istio", "addresses": [{"type": "Hostname", "value": "ingress"}],
                    "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}
INGRESS = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress", "namespace": "default"},
           "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}}
CLASS = {"apiVersion": f"{GROUP}/v1", "kind": "GatewayClass", "metadata": {"name": "istio"},
         "spec": {"controllerName": "istio.io/gateway-controller"}}
ROUTE = {"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute", "metadata": {"name": "reviews", "namespace": "default"},
         "spec": {"parentRefs": [{"name": "web"}, {"name": "theirs"}],
                  "rules": [{"backendRefs": [{"name": "reviews", "port": 9080}]}]}}
REVIEWS = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": "default"},
           "spec": {"ports": [{"name": "http", "port": 9080}]}}


@pytest.fixture
def client(kubeconfig: str) -> KubeClient:
    return load_client(kubeconfig, None)


def _serve_gateway_api(emulator: MeshEmulator) -> None:
    """The Gateway API's CRDs installed."""
    for resource in GATEWAY_API:
        emulator._on_loop(lambda r=resource: emulator._declare(r.group, r.version, r.plural, r.kind,
                                                                namespaced=r.namespaced))


@pytest.fixture
def cluster(emulator: MeshEmulator) -> MeshEmulator:
    """The Gateway API's CRDs served, the istio class, a Gateway with its Service, and a route
    whose backend Service does not exist yet."""
    _serve_gateway_api(emulator)
    for obj in (CLASS, INGRESS, GATEWAY, ROUTE):
        emulator.apply(obj)
    return emulator


class Running:
    """A Kubernetes source tapped by a status writer, consumed as serve's server consumes it."""

    def __init__(self, client: KubeClient, leading: Callable[[], bool] = lambda: True, *,
                 classes: DefaultClasses | None = None) -> None:
        source = KubernetesSource(client, (*REGISTRY, *CREDENTIALS, *GATEWAY_API), debounce_after=0.02)
        self.writer = GatewayStatusWriter(client, ORIGIN, DEFAULT_DOMAIN, leading=leading, classes=classes)
        self.reporting = StatusReporting(source, self.writer, retry_after=0.1)
        self.updates = 0
        self.task: asyncio.Task[None] | None = None

    async def _consume(self) -> None:
        async for _ in self.reporting.updates():
            self.updates += 1

    def start(self) -> None:
        self.task = asyncio.create_task(self._consume())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def running(*replicas: Running) -> AsyncIterator[None]:
    for replica in replicas:
        replica.start()
    try:
        yield
    finally:
        for replica in replicas:
            await replica.stop()


def _get(client: KubeClient, path: str) -> dict[str, Any]:
    result: dict[str, Any] = call_json(client.new_api_client(), "GET", path)
    return result


def _route(client: KubeClient) -> dict[str, Any]:
    return _get(client, f"/apis/{GROUP}/v1/namespaces/default/httproutes/reviews")


def _gateway(client: KubeClient) -> dict[str, Any]:
    return _get(client, f"/apis/{GROUP}/v1/namespaces/default/gateways/web")


def _conditions(entry: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in entry["conditions"]}


async def _until(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _quiet(replicas: tuple[Running, ...], period: float = 0.5) -> int:
    """Wait until no replica has written for `period`; the writes made in all."""
    last = -1
    while True:
        total = sum(r.writer.writes for r in replicas)
        if total == last:
            return total
        last = total
        await asyncio.sleep(period)


async def test_status_written_flipped_and_left_alone(cluster: MeshEmulator, client: KubeClient) -> None:
    replica = Running(client)
    async with running(replica):
        route = await _until(lambda: "status" in (r := _route(client)) and r, what="the route's status")
        (parent,) = route["status"]["parents"]  # `theirs` is no Gateway of Istio's: not ours to report on
        assert parent["parentRef"] == {"name": "web"}  # as written
        assert parent["controllerName"] == "istio.io/gateway-controller"
        assert _conditions(parent) == {
            "Accepted": ("True", "Accepted", "Route was valid"),
            "ResolvedRefs": ("False", "BackendNotFound", "backend(reviews.default.svc.cluster.local) not found")}
        assert {c["observedGeneration"] for c in parent["conditions"]} == {route["metadata"]["generation"]}
        gateway = await _until(lambda: _gateway(client).get("status"), what="the gateway's status")
        assert _conditions(gateway) == {
            "Accepted": ("True", "Accepted", "Resource accepted"),
            "Programmed": ("True", "Programmed",
                           "Resource programmed, assigned to service(s) ingress.default.svc.cluster.local:80")}
        assert gateway["addresses"] == [{"type": "IPAddress", "value": "10.96.0.20"}]
        (listener,) = gateway["listeners"]
        assert listener["attachedRoutes"] == 1 and listener["name"] == "http"
        class_status = _get(client, f"/apis/{GROUP}/v1/gatewayclasses/istio")["status"]
        assert _conditions(class_status) == {"Accepted": ("True", "Accepted", "Handled by Istio controller")}
        # the status subresource changed the status only: the generation is the spec's
        assert route["metadata"]["generation"] == 1
        settled = await _quiet((replica,))
        assert settled == 3
        accepted_since = {c["type"]: c["lastTransitionTime"] for c in parent["conditions"]}["Accepted"]

        # the backend Service appears: ResolvedRefs flips, Accepted keeps its transition time
        apply_objects(client, [REVIEWS])
        route = await _until(lambda: (r := _route(client)) and _conditions(r["status"]["parents"][0])[
            "ResolvedRefs"][0] == "True" and r, what="ResolvedRefs True")
        (parent,) = route["status"]["parents"]
        assert _conditions(parent)["ResolvedRefs"] == ("True", "ResolvedRefs", "All references resolved")
        assert {c["type"]: c["lastTransitionTime"] for c in parent["conditions"]}["Accepted"] == accepted_since
        settled = await _quiet((replica,))
        assert settled == 4  # the route only: the Gateway and the class did not change

        # a change that alters no status (a new unrelated Service): the source updates, nothing is written
        updates, version = replica.updates, _route(client)["metadata"]["resourceVersion"]
        other = dict(REVIEWS, metadata={"name": "ratings", "namespace": "default"})
        apply_objects(client, [other])
        await _until(lambda: replica.updates > updates, what="the next update")
        assert await _quiet((replica,)) == 4
        assert _route(client)["metadata"]["resourceVersion"] == version

        # the route's spec changes: observedGeneration follows the new generation
        changed = dict(ROUTE, spec=dict(ROUTE["spec"], parentRefs=[{"name": "web", "port": 8080}]))
        apply_objects(client, [changed])
        route = await _until(lambda: (r := _route(client)) and r["metadata"]["generation"] == 2 and
                             r["status"]["parents"][0]["conditions"][0]["observedGeneration"] == 2 and r,
                             what="observedGeneration 2")
        assert _conditions(route["status"]["parents"][0])["Accepted"] == ("False", "NoMatchingParent",
                                                                          "port 8080 not found")


async def test_replicas_agree_and_a_follower_writes_nothing(cluster: MeshEmulator, client: KubeClient) -> None:
    """Two replicas writing the same status settle after a few writes (never fighting); a
    replica that is not the leader writes nothing at all."""
    replicas = (Running(client), Running(client))
    follower = Running(client, leading=lambda: False)
    async with running(*replicas, follower):
        await _until(lambda: _route(client).get("status"), what="the route's status")
        total = await _quiet(replicas, period=1.0)
        assert 3 <= total <= 6  # each object once, or twice when both wrote before seeing the other's
        apply_objects(client, [REVIEWS])
        await _until(lambda: _conditions(_route(client)["status"]["parents"][0])["ResolvedRefs"][0] == "True",
                     what="ResolvedRefs True")
        assert await _quiet(replicas, period=1.0) - total in (1, 2)
        assert follower.writer.writes == 0 and follower.updates > 0


async def test_objects_from_files_never_get_a_status(cluster: MeshEmulator, client: KubeClient) -> None:
    """The writer writes only what the cluster gave: the same objects read from a directory
    (any other origin) are left alone."""
    import dataclasses

    from meshctl.config.resource import Origin

    source = KubernetesSource(client, (*REGISTRY, *CREDENTIALS, *GATEWAY_API), debounce_after=0.02)
    updates = source.updates()
    try:
        first = await asyncio.wait_for(anext(updates), 10)
    finally:
        await updates.aclose()  # type: ignore[attr-defined]
    from_files = [dataclasses.replace(r, origin=Origin("mesh/gateway.yaml", 1)) for r in first.resources]
    writer = GatewayStatusWriter(client, ORIGIN, DEFAULT_DOMAIN)
    assert await asyncio.to_thread(writer.write, from_files) == []
    assert "status" not in _route(client)
    assert sorted(await asyncio.to_thread(writer.write, first.resources)) == [
        "Gateway default/web", "GatewayClass istio", "HTTPRoute default/reviews"]


def _classes(client: KubeClient) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in _get(client, f"/apis/{GROUP}/v1/gatewayclasses")["items"]}


ISTIO_SPEC = {"controllerName": "istio.io/gateway-controller", "description": "The default Istio GatewayClass"}
REMOTE_SPEC = {"controllerName": "istio.io/unmanaged-gateway",
               "description": "Remote to this cluster. Does not deploy or affect configuration."}


async def test_the_built_in_classes_are_made_never_replaced_and_made_again(emulator: MeshEmulator,
                                                                           client: KubeClient) -> None:
    """The leader creates the classes the cluster lacks (then accepts them, as their controller);
    a user's `istio` class is left as the user wrote it; a deleted class comes back; a replica
    that does not lead makes none."""
    _serve_gateway_api(emulator)
    theirs = dict(CLASS, spec={"controllerName": "istio.io/gateway-controller", "description": "hands off"})
    apply_objects(client, [theirs])
    follower = Running(client, leading=lambda: False, classes=DefaultClasses(client))
    async with running(follower):
        await _until(lambda: follower.updates > 0, what="the follower's first update")
        await asyncio.sleep(0.3)
        assert sorted(_classes(client)) == ["istio"]
    made = DefaultClasses(client)
    leader = Running(client, classes=made)
    async with running(leader):
        remote = await _until(lambda: _classes(client).get("istio-remote"), what="istio-remote made")
        assert remote["spec"] == REMOTE_SPEC
        await _until(lambda: (_classes(client)["istio-remote"].get("status") or {}).get("conditions"),
                     what="istio-remote accepted")
        assert _classes(client)["istio"]["spec"] == theirs["spec"]
        assert made.created == 1

        delete_objects(client, [theirs])
        again = await _until(lambda: _classes(client).get("istio"), what="istio made again")
        assert again["spec"] == ISTIO_SPEC
        await asyncio.sleep(0.3)
        assert made.created == 2


def test_without_the_gateway_api_no_class_is_made_until_it_is_served(emulator: MeshEmulator,
                                                                      client: KubeClient) -> None:
    """No GatewayClass API: nothing made, no error, and not asked again for a minute; once
    served, both classes are made, once (the watch has yet to show them)."""
    def unserve() -> None:  # (the emulator's bundle serves the Gateway API's standard kinds)
        for key in [k for k in emulator.resources if k.group == GROUP]:
            del emulator.resources[key]

    emulator._on_loop(unserve)
    now = [0.0]
    classes = DefaultClasses(client, clock=lambda: now[0])
    assert classes.ensure([]) == []
    _serve_gateway_api(emulator)
    assert classes.ensure([]) == []
    now[0] = 61.0
    assert classes.ensure([]) == ["istio", "istio-remote"]
    posts = _class_posts(emulator)
    assert posts >= 2
    assert classes.ensure([]) == []
    assert _class_posts(emulator) == posts  # created: not asked again until an update shows them
    assert {name: c["spec"] for name, c in _classes(client).items()} == {"istio": ISTIO_SPEC,
                                                                       "istio-remote": REMOTE_SPEC}


def test_a_class_that_exists_is_asked_for_once(emulator: MeshEmulator, client: KubeClient) -> None:
    """A class of that name the updates do not show (the loader refused the user's object) is
    found to exist (409) once, left as it is, and not asked for again."""
    _serve_gateway_api(emulator)
    apply_objects(client, [CLASS])
    classes = DefaultClasses(client)
    before = _class_posts(emulator)
    assert classes.ensure([]) == ["istio-remote"]
    posts = _class_posts(emulator)
    assert posts - before == 2  # istio found (409), istio-remote made
    assert classes.ensure([]) == []
    assert _class_posts(emulator) == posts
    assert _classes(client)["istio"]["spec"] == CLASS["spec"]


def _class_posts(emulator: MeshEmulator) -> int:
    return sum(1 for r in emulator._requests if r.method == "POST" and "/gatewayclasses" in str(r.url))


def test_serve_writes_the_status_once_it_leads(cluster: MeshEmulator, client: KubeClient, kubeconfig: str,
                                                tmp_path: Path, processes: Any) -> None:
    """`meshctl serve --kubernetes --leader-lease` (a subprocess) writes the status once it
    holds the Lease."""
    serve = KubeServe(kubeconfig, processes, tmp_path / "serve.log", ("--leader-lease", "default/istiod-leader"))
    serve.start()
    route = wait_until(lambda: "status" in (r := _route(client)) and r, 20, what="the route's status from serve")
    assert serve.leading()
    assert _conditions(route["status"]["parents"][0])["ResolvedRefs"][1] == "BackendNotFound"
    wait_until(lambda: "gateway API status written" in serve.log.read_text(), 5, what="the write logged")
    remote = wait_until(lambda: _classes(client).get("istio-remote"), 10, what="istio-remote made by serve")
    assert remote["spec"] == REMOTE_SPEC
