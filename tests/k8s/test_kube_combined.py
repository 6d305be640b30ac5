"""`serve --kubernetes --config-dir DIR`: Istio and Gateway API config from the files, the
registry from the cluster, the Secrets gateways serve from both (the cluster's winning), each
source keeping its own rules, one update whenever either changes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path

from emulator import MeshEmulator
from seeds import pod, service, virtual_service

from meshctl.kube.client import load_client
from meshctl.sources.base import SourceUpdate
from meshctl.sources.select import SourceChoice

ROUTE = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-from-files}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
"""
HTTP_ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules: [{backendRefs: [{name: reviews, port: 9080}]}]
"""
SHADOW = """apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {ports: [{name: http, port: 1234}]}
"""


def kinds(update: SourceUpdate) -> set[tuple[str, str, str]]:
    return {(r.kind, r.name, r.origin.file.rsplit("/", 1)[-1]) for r in update.resources}


async def test_istio_config_from_files_and_the_registry_from_the_cluster(
    emulator: MeshEmulator, kubeconfig: str, tmp_path: Path
) -> None:
    files = tmp_path / "config"
    files.mkdir()
    (files / "route.yaml").write_text(ROUTE)
    (files / "shadow.yaml").write_text(SHADOW)
    (files / "mesh-route.yaml").write_text(HTTP_ROUTE)
    emulator.apply(service("reviews"))
    emulator.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": "web-cert", "namespace": "istio-system"},
                    "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}})
    emulator.apply(pod("reviews-v1", "10.1.0.5"))
    emulator.apply(virtual_service("reviews-in-the-cluster"))  # not read: Istio config comes from files
    choice = SourceChoice(str(files), load_client(kubeconfig, None), debounce_after=0.02)
    assert choice.describe() == f"Istio config from {files}, the registry from the Kubernetes API at {emulator_url(kubeconfig)}"
    queue: asyncio.Queue[SourceUpdate] = asyncio.Queue()

    async def collect() -> None:
        async for update in choice.build().updates():
            queue.put_nowait(update)

    task = asyncio.create_task(collect())
    try:
        first = await asyncio.wait_for(queue.get(), 10)
        assert kinds(first) == {("VirtualService", "reviews-from-files", "route.yaml"),
                                ("HTTPRoute", "reviews-mesh", "mesh-route.yaml"),
                                ("Service", "reviews", "kubernetes"), ("Pod", "reviews-v1", "kubernetes"),
                                ("Secret", "web-cert", "kubernetes")}  # gateways' credentials
        (files / "route.yaml").write_text(ROUTE.replace("reviews-from-files", "renamed"))
        renamed = await asyncio.wait_for(queue.get(), 10)
        assert ("VirtualService", "renamed", "route.yaml") in kinds(renamed)
        emulator.apply(pod("reviews-v2", "10.1.0.6"))
        scaled = await asyncio.wait_for(queue.get(), 10)
        assert {name for kind, name, _ in kinds(scaled) if kind == "Pod"} == {"reviews-v1", "reviews-v2"}
        assert ("VirtualService", "renamed", "route.yaml") in kinds(scaled)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _secret(name: str, certificate: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "istio-system"},
            "data": {"tls.crt": base64.b64encode(certificate.encode()).decode(), "tls.key": "a2V5"}}


async def test_secrets_in_the_files_count_and_the_clusters_win(
    emulator: MeshEmulator, kubeconfig: str, tmp_path: Path
) -> None:
    """A gateway's certificate kept in the files is served like the cluster's; where the
    cluster has a Secret of the same name, the cluster's is the one, and a file Secret that
    appears in the cluster later gives way to it."""
    import yaml

    from meshctl.config.kinds.kubernetes import Secret

    files = tmp_path / "config"
    files.mkdir()
    (files / "certs.yaml").write_text(yaml.safe_dump_all([_secret("files-only", "from-files"),
                                                          _secret("both", "from-files")]))
    emulator.apply(_secret("both", "from-the-cluster"))
    choice = SourceChoice(str(files), load_client(kubeconfig, None), debounce_after=0.02)
    queue: asyncio.Queue[SourceUpdate] = asyncio.Queue()

    async def collect() -> None:
        async for update in choice.build().updates():
            queue.put_nowait(update)

    def secrets(update: SourceUpdate) -> dict[str, tuple[str, bytes]]:
        out = {}
        for r in update.resources:
            if r.kind == "Secret":
                value = r.view_as(Secret).value("tls.crt")
                assert value is not None
                out[r.name] = (r.origin.file.rsplit("/", 1)[-1], value.reveal())
        return out

    task = asyncio.create_task(collect())
    try:
        first = await asyncio.wait_for(queue.get(), 10)
        assert secrets(first) == {"files-only": ("certs.yaml", b"from-files"),
                                  "both": ("kubernetes", b"from-the-cluster")}
        emulator.apply(_secret("files-only", "now-in-the-cluster"))
        moved = await asyncio.wait_for(queue.get(), 10)
        assert secrets(moved)["files-only"] == ("kubernetes", b"now-in-the-cluster")
        assert len([r for r in moved.resources if r.kind == "Secret"]) == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def emulator_url(kubeconfig: str) -> str:
    return load_client(kubeconfig, None).host
