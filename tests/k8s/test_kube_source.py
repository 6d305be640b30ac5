"""The Kubernetes source (list + watch of the registry and Istio kinds) against the emulator,
over real HTTP with the official client: what serve's config is made of when it runs in a
cluster. Every test changes the cluster through the API, as kubectl would."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from emulator import BackgroundEmulator, MeshEmulator
from seeds import pod, service, virtual_service

from meshctl.kube.client import KubeClient, load_client
from meshctl.kube.resources import ISTIO, REGISTRY, ApiResource
from meshctl.kube.watch import Backoff, Listed, Reflector
from meshctl.sources.base import SourceUpdate
from meshctl.sources.kubernetes import KubernetesSource

VS = ("networking.istio.io/v1", "virtualservices")


@pytest.fixture
def client(kubeconfig: str) -> KubeClient:
    return load_client(kubeconfig, None)


class Updates:
    """A source's updates, collected by a task started on the first `next` (after the test has
    seeded the cluster), taken one at a time with a deadline (waiting on the generator itself
    would cancel it on timeout)."""

    def __init__(self, source: KubernetesSource) -> None:
        self.source = source
        self.queue: asyncio.Queue[SourceUpdate] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _collect(self) -> None:
        async for update in self.source.updates():
            self.queue.put_nowait(update)

    async def next(self, timeout: float = 10.0) -> SourceUpdate:
        if self.task is None:
            self.task = asyncio.create_task(self._collect())
        if self.task.done():
            self.task.result()
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def until(self, check: Any, timeout: float = 10.0) -> SourceUpdate:
        deadline = time.monotonic() + timeout
        while True:
            update = await self.next(max(0.1, deadline - time.monotonic()))
            if check(update):
                return update

    async def none_within(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await self.next(seconds)

    async def close(self) -> None:
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def updates(client: KubeClient) -> AsyncIterator[Updates]:
    pulled = Updates(KubernetesSource(client, debounce_after=0.02))
    yield pulled
    await pulled.close()


def names(update: SourceUpdate, kind: str) -> list[str]:
    return sorted(r.name for r in update.resources if r.kind == kind)


async def test_first_update_is_every_kind_validated_and_reduced_to_what_meshctl_reads(
    emulator: MeshEmulator, updates: Updates
) -> None:
    emulator.apply(service("reviews"))
    emulator.apply(pod("reviews-v1", "10.1.0.5"))
    emulator.apply(pod("reviews-v0", "10.1.0.4", phase="Failed"))
    emulator.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {
        "topology.kubernetes.io/region": "eu-west1", "topology.kubernetes.io/zone": "eu-west1-b"}},
        "status": {"images": [{"names": ["big"]}]}})
    emulator.apply(virtual_service("reviews"))
    first = await updates.next()
    assert names(first, "Pod") == ["reviews-v1"]  # Failed pods are not even fetched
    assert names(first, "VirtualService") == ["reviews"] and names(first, "Node") == ["node-1"]
    reviews = next(r for r in first.resources if r.kind == "Pod")
    assert reviews.spec["containers"] == [{"name": "app", "ports": [{"containerPort": 9080}]}]
    assert reviews.status == {"phase": "Running", "podIP": "10.1.0.5",
                              "conditions": [{"type": "Ready", "status": "True"}]}
    assert reviews.origin.file == "kubernetes" and not first.rejected
    assert {r.kind for r in first.resources} == {"Service", "Pod", "Node", "VirtualService"}


async def test_a_change_is_one_update_and_a_change_meshctl_does_not_read_is_none(
    emulator: MeshEmulator, updates: Updates
) -> None:
    emulator.apply(pod("reviews-v1", "10.1.0.5"))
    await updates.next()
    emulator.apply(pod("reviews-v1", "10.1.0.5", containerStatuses=[{"name": "app", "restartCount": 3}]))
    await updates.none_within(0.5)
    emulator.apply(virtual_service("reviews"))
    assert names(await updates.next(), "VirtualService") == ["reviews"]
    emulator.remove(*VS, "default", "reviews")
    assert names(await updates.next(), "VirtualService") == []


async def test_an_invalid_istio_object_is_refused_by_name_and_field_while_the_rest_serves(
    emulator: MeshEmulator, updates: Updates
) -> None:
    emulator.apply(virtual_service("good"))
    emulator.apply(virtual_service("bad", hots="reviews"))
    first = await updates.next()
    assert names(first, "VirtualService") == ["good"]
    (refused,) = first.rejected
    assert refused.file == "VirtualService default/bad"
    assert refused.problems[0] == ("kubernetes: VirtualService default/bad: spec.http[0].route[0].destination.hots: "
                                   "unknown field 'hots' (did you mean 'host'?)")
    # valid, then broken: the last good version keeps serving, and the refusal is reported
    emulator.apply(virtual_service("good", port={"number": 0}))
    broken = await updates.next()
    assert names(broken, "VirtualService") == ["good"]
    good = next(r for r in broken.resources if r.name == "good")
    assert "port" not in good.spec["http"][0]["route"][0]["destination"]
    assert [r.file for r in broken.rejected] == ["VirtualService default/bad", "VirtualService default/good"]
    emulator.remove(*VS, "default", "good")
    emulator.remove(*VS, "default", "bad")
    gone = await updates.until(lambda u: not u.rejected)
    assert names(gone, "VirtualService") == []


async def test_a_watch_cut_with_410_gone_relists_and_loses_no_event(
    emulator: MeshEmulator, client: KubeClient
) -> None:
    emulator.apply(virtual_service("stays"))
    emulator.apply(virtual_service("deleted-meanwhile"))
    source = KubernetesSource(client, ISTIO, debounce_after=0.02)
    pulled = Updates(source)
    try:
        assert names(await pulled.next(), "VirtualService") == ["deleted-meanwhile", "stays"]
        lists = sum(r.lists for r in source.reflectors)

        def change_while_cut() -> None:
            emulator.store.delete(("networking.istio.io", "virtualservices"), ("default", "deleted-meanwhile"))
            emulator.store.create(("networking.istio.io", "virtualservices"), virtual_service("created-meanwhile"))
            emulator.cut_watches(gone=True)  # before any watch could deliver the two events

        emulator._on_loop(change_while_cut)
        after = await pulled.until(lambda u: "deleted-meanwhile" not in names(u, "VirtualService"))
        assert names(after, "VirtualService") == ["created-meanwhile", "stays"]
        assert sum(r.lists for r in source.reflectors) > lists  # it listed again
        emulator.apply(virtual_service("after-the-relist"))
        latest = await pulled.until(lambda u: "after-the-relist" in names(u, "VirtualService"))
        assert names(latest, "VirtualService") == ["after-the-relist", "created-meanwhile", "stays"]
    finally:
        await pulled.close()


async def test_a_plain_disconnect_resumes_from_the_last_revision_without_listing_again(
    emulator: MeshEmulator, client: KubeClient
) -> None:
    source = KubernetesSource(client, ISTIO, debounce_after=0.02)
    pulled = Updates(source)
    try:
        await pulled.next()
        emulator.cut_watches()
        emulator.apply(virtual_service("reviews"))
        assert names(await pulled.next(), "VirtualService") == ["reviews"]
        assert all(r.lists == 1 for r in source.reflectors)
    finally:
        await pulled.close()


async def test_a_pod_that_fails_leaves_the_registry(emulator: MeshEmulator, updates: Updates) -> None:
    emulator.apply(pod("reviews-v1", "10.1.0.5"))
    assert names(await updates.next(), "Pod") == ["reviews-v1"]
    emulator.apply(pod("reviews-v1", "10.1.0.5", phase="Failed"))
    assert names(await updates.next(), "Pod") == []


async def test_istio_kinds_whose_crd_is_missing_count_as_empty_until_it_is_installed() -> None:
    from kubernetes.client import Configuration

    with BackgroundEmulator(istio_resources=False) as bare:
        assert bare.emulator is not None
        configuration = Configuration()
        configuration.host = bare.url
        bare_client = KubeClient(configuration, "bare", "default", 5)
        vs = next(r for r in ISTIO if r.kind == "VirtualService")

        def reflector(*args: Any, **options: Any) -> Reflector:
            return Reflector(*args, missing_retry=0.2, **options)

        pulled = Updates(KubernetesSource(bare_client, (vs,), debounce_after=0.02, reflector=reflector))
        try:
            assert (await pulled.next()).resources == ()
            bare.emulator._on_loop(lambda: bare.emulator._declare(  # type: ignore[union-attr]
                "networking.istio.io", "v1", "virtualservices", "VirtualService", namespaced=True))
            bare.emulator.apply(virtual_service("reviews"))
            assert names(await pulled.next(), "VirtualService") == ["reviews"]
        finally:
            await pulled.close()


def test_a_failing_api_server_is_retried_with_backoff(emulator: MeshEmulator, client: KubeClient) -> None:
    attempts: list[float] = []

    def flaky(request: Any) -> Any:
        attempts.append(time.monotonic())
        if len(attempts) <= 3:
            return 503
        raise NotImplementedError  # let the API answer from now on

    emulator["get /api/v1/services"] << flaky
    emulator.apply(service("reviews"))
    received: list[Listed] = []
    listed = threading.Event()
    resource = next(r for r in REGISTRY if r.kind == "Service")

    def sink(_: ApiResource, change: Any) -> None:
        if isinstance(change, Listed):
            received.append(change)
            listed.set()

    reflector = Reflector(client, resource, sink, backoff=Backoff(initial=0.1, ceiling=1.0))
    reflector.start()
    try:
        assert listed.wait(10)
    finally:
        reflector.stop()
    assert [obj["metadata"]["name"] for obj in received[0].objects] == ["reviews"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)][:3]
    assert len(attempts) >= 4 and all(gap >= 0.04 for gap in gaps), gaps


def _mesh_configmap(text: str | None, *, namespace: str = "istio-system", name: str = "istio") -> dict[str, Any]:
    data = {"mesh": text} if text is not None else {}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


async def test_a_revisioned_control_plane_reads_its_own_mesh_configmap(
    emulator: MeshEmulator, client: KubeClient
) -> None:
    """serve of revision `canary` (REVISION in its pod) reads `istio-canary`, as istiod does,
    not the default revision's `istio`."""
    from meshctl.model.meshconfig import mesh_in
    from meshctl.sources.select import SourceChoice

    emulator.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
    emulator.apply(_mesh_configmap("trustDomain: default.example"))
    emulator.apply(_mesh_configmap("trustDomain: canary.example", name="istio-canary"))
    choice = SourceChoice(None, client, debounce_after=0.02, mesh_namespace="istio-system", mesh_revision="canary")
    assert choice.describe().endswith("the mesh config from ConfigMap istio-system/istio-canary")
    pulled = Updates(choice.build())
    try:
        mesh = mesh_in((await pulled.next()).resources)
        assert mesh is not None and mesh.trust_domain == "canary.example"
    finally:
        await pulled.close()


async def test_the_istio_configmap_is_the_mesh_config_and_a_bad_one_keeps_the_last_good(
    emulator: MeshEmulator, client: KubeClient
) -> None:
    from meshctl.kube.resources import mesh_configmap
    from meshctl.model.meshconfig import mesh_in
    from meshctl.model.snapshot import build_snapshot

    emulator.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
    emulator.apply(_mesh_configmap("rootNamespace: mesh-root\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"))
    emulator.apply(_mesh_configmap("outboundTrafficPolicy: {mode: nonsense}", name="istio-sidecar-injector"))
    emulator.apply(_mesh_configmap("outboundTrafficPolicy: {mode: nonsense}", namespace="default"))
    source = KubernetesSource(client, (*REGISTRY, mesh_configmap("istio-system", "istio")), debounce_after=0.02)
    pulled = Updates(source)
    try:
        first = await pulled.next()
        assert not first.rejected  # only istiod's own ConfigMap is read, not its namesakes
        (resource,) = [r for r in first.resources if r.kind == "MeshConfig"]
        assert resource.ref() == "MeshConfig istio-system/istio"
        mesh = build_snapshot(first.resources).mesh
        assert (mesh.outbound_mode, mesh.root_namespace) == ("REGISTRY_ONLY", "mesh-root")
        # a misspelt field and a bad value: refused by object, line and field; the last good serves
        emulator.apply(_mesh_configmap(
            "rootNamespace: other\noutboundTrafficPolicy:\n  mode: DENY_ALL\nenableTracng: false\n"))
        broken = await pulled.next()
        (refused,) = broken.rejected
        assert refused.file == "ConfigMap istio-system/istio"
        assert refused.problems == (
            "kubernetes: ConfigMap istio-system/istio: data.mesh:3: outboundTrafficPolicy.mode: "
            "invalid value 'DENY_ALL': must be one of REGISTRY_ONLY, ALLOW_ANY, ALLOW_ANY_DYNAMIC_DNS",
            "kubernetes: ConfigMap istio-system/istio: data.mesh:4: enableTracng: "
            "unknown field 'enableTracng' (did you mean 'enableTracing'?)",
        )
        kept = mesh_in(broken.resources)
        assert kept is not None and (kept.outbound_mode, kept.root_namespace) == ("REGISTRY_ONLY", "mesh-root")
        # fixed: accepted, and it is what translation uses
        emulator.apply(_mesh_configmap("outboundTrafficPolicy: {mode: ALLOW_ANY}\ntrustDomain: example.org\n"))
        fixed = await pulled.until(lambda u: not u.rejected)
        assert build_snapshot(fixed.resources).mesh.trust_domain == "example.org"
        # no `mesh` key, then no ConfigMap: istiod's defaults, as istiod reads them
        emulator.apply(_mesh_configmap(None))
        empty = await pulled.next()
        assert build_snapshot(empty.resources).mesh.outbound_mode == "ALLOW_ANY"
        assert build_snapshot(empty.resources).mesh.trust_domain == "cluster.local"
        emulator.remove("v1", "configmaps", "istio-system", "istio")
        gone = await pulled.next()
        assert mesh_in(gone.resources) is None
    finally:
        await pulled.close()


async def test_secrets_for_gateways_are_read_but_never_printed(emulator: MeshEmulator, client: KubeClient) -> None:
    """What serve watches in a cluster includes Secrets (gateways' credentialNames), as istiod's
    credentials controller does: not service account tokens, and no value in any repr or log."""
    from meshctl.config.kinds.kubernetes import Secret
    from meshctl.kube.resources import CREDENTIALS, GATEWAY_API

    key = base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nnot a real one\n").decode()
    emulator.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": "web-cert", "namespace": "istio-system"},
                    "data": {"tls.crt": key, "tls.key": key}})
    emulator.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                    "metadata": {"name": "token", "namespace": "istio-system"}, "data": {"token": key}})
    pulled = Updates(KubernetesSource(client, (*REGISTRY, *CREDENTIALS, *ISTIO, *GATEWAY_API), debounce_after=0.02))
    try:
        first = await pulled.next()
    finally:
        await pulled.close()
    assert names(first, "Secret") == ["web-cert"]
    (secret,) = [r for r in first.resources if r.kind == "Secret"]
    assert "PRIVATE KEY" not in repr(secret) and key not in repr(secret)
    value = secret.view_as(Secret).value("tls.key")
    assert value is not None and b"PRIVATE KEY" in value.reveal()


async def test_gateway_api_kinds_are_read_at_the_versions_the_cluster_serves(
    emulator: MeshEmulator, client: KubeClient
) -> None:
    """Gateway API objects come from the cluster like Istio's, at the newest version its CRDs
    serve (TCPRoute at v1alpha2 here), with the status controllers wrote left as it is; the
    Gateway API's Gateway is `KubernetesGateway`, apart from Istio's Gateway."""
    from meshctl.kube.resources import GATEWAY_API

    for resource in GATEWAY_API:
        version = resource.versions[-1] if resource.kind == "TCPRoute" else resource.version
        emulator._on_loop(lambda r=resource, v=version: emulator._declare(
            r.group, v, r.plural, r.kind, namespaced=r.namespaced))
    group = "gateway.networking.k8s.io"
    emulator.apply({"apiVersion": f"{group}/v1", "kind": "Gateway", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
                    "status": {"conditions": [{"type": "Programmed", "status": "True"}]}})
    emulator.apply({"apiVersion": f"{group}/v1", "kind": "HTTPRoute", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"parentRefs": [{"name": "web"}], "rules": [{"backendRefs": [{"name": "reviews", "port": 9080}]}]}})
    emulator.apply({"apiVersion": f"{group}/v1alpha2", "kind": "TCPRoute", "metadata": {"name": "db", "namespace": "default"},
                    "spec": {"parentRefs": [{"name": "web"}], "rules": [{"backendRefs": [{"name": "db", "port": 5432}]}]}})
    pulled = Updates(KubernetesSource(client, GATEWAY_API, debounce_after=0.02))
    try:
        first = await pulled.next()
    finally:
        await pulled.close()
    assert not first.rejected
    assert {(r.kind, r.name) for r in first.resources} == {("KubernetesGateway", "web"), ("HTTPRoute", "web"),
                                                           ("TCPRoute", "db")}
    gateway = next(r for r in first.resources if r.kind == "KubernetesGateway")
    assert gateway.status == {"conditions": [{"type": "Programmed", "status": "True"}]}
