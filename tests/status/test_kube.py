"""proxy-status through Kubernetes (the official client, real HTTP, the in-process API server of
tests/k8s): finding istiod, port-forwarding to its xDS port with a real gRPC exchange, TLS with
a ServiceAccount token, and reading a pod's Envoy through a port-forward or an exec."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kmock
import pytest
from emulator import MeshEmulator
from envoy.service.discovery.v3 import discovery_pb2
from fake_istiod import Authority, FakeIstiod
from seeds import BETA_TOKEN, add_deployment, add_pod
from status_support import client_config, syncz_answer
from status_world import NAMESPACE, World
from testsupport import run_cli

ISTIO = "istio-system"


def forwarded(emulator: MeshEmulator) -> list[str]:
    return [f"{r.name}.{r.namespace}" for r in emulator if r.subresource == "portforward"]


def istiod_pod(emulator: MeshEmulator, name: str, revision: str = "default") -> None:
    add_pod(emulator, name, ISTIO, labels={"app": "istiod", "istio.io/rev": revision}, containers=("discovery",))


def issue_tokens(emulator: MeshEmulator) -> list[dict[str, Any]]:
    """Answer TokenRequests for istio-system/default; returns what was asked, with who asked."""
    asked: list[dict[str, Any]] = []

    def issue(request: kmock.Request) -> dict[str, Any]:
        asked.append({"spec": request.data["spec"], "authorization": request.headers.get("Authorization", "")})
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": request.data["spec"],
                "status": {"token": "jwt-for-istio-ca"}}  # fmt: skip

    emulator[f"post /api/v1/namespaces/{ISTIO}/serviceaccounts/default/token"] << issue
    return asked


def publish_root(emulator: MeshEmulator, root: Authority, namespace: str = ISTIO) -> None:
    """The ConfigMap istiod writes into every namespace: the mesh's root certificate."""
    emulator.apply({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-ca-root-cert", "namespace": namespace},
        "data": {"root-cert.pem": root.pem.decode()},
    })  # fmt: skip


def test_finds_istiod_and_asks_it_through_a_port_forward(
    world: World, emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    istiod_pod(emulator, "istiod-7d4f74889d-mb5dh")
    emulator.forwards[ISTIO, "istiod-7d4f74889d-mb5dh", 15010] = ("127.0.0.1", world.ports["xds"])
    code, out, err = run_cli(capsys, "ps", "-c", kubeconfig, "--xds-port", "15010", "--plaintext")
    assert (code, err) == (0, "")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [f"details-v1.{NAMESPACE}", f"productpage-v1.{NAMESPACE}"]
    assert all(line.split()[-2:] == ["4", "(CDS,LDS,EDS,RDS)"] for line in out.splitlines()[1:])
    assert forwarded(emulator) == [f"istiod-7d4f74889d-mb5dh.{ISTIO}"], "one gRPC connection, one port-forward"


def productpage_behind_istiod(world: World, emulator: MeshEmulator) -> None:
    """istiod-a (forwarded to serve's plaintext xDS port) and the productpage pod and
    Deployment (its port 15000 forwarded to the real Envoy's admin port)."""
    istiod_pod(emulator, "istiod-a")
    emulator.forwards[ISTIO, "istiod-a", 15010] = ("127.0.0.1", world.ports["xds"])
    add_pod(emulator, "productpage-v1", NAMESPACE, labels={"app": "productpage"})
    emulator.forwards[NAMESPACE, "productpage-v1", 15000] = ("127.0.0.1", world.envoys["productpage-v1"].admin_port)
    add_deployment(emulator, "productpage", NAMESPACE, {"matchLabels": {"app": "productpage"}})


def test_compares_a_pod_read_through_the_api_server(
    world: World, emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    productpage_behind_istiod(world, emulator)
    for target in ("productpage-v1", "deploy/productpage"):
        code, out, err = run_cli(capsys, "ps", target, "-c", kubeconfig, "--xds-port", "15010", "--plaintext")
        assert (code, err) == (0, "")
        assert out.startswith("Clusters Match\nListeners Match\nRoutes Match (RDS last loaded at ")
    assert sorted(forwarded(emulator)) == [f"istiod-a.{ISTIO}"] * 2 + [f"productpage-v1.{NAMESPACE}"] * 2


def test_falls_back_to_exec_when_port_forward_fails(
    world: World, emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    istiod_pod(emulator, "istiod-a")
    emulator.forwards[ISTIO, "istiod-a", 15010] = ("127.0.0.1", world.ports["xds"])
    add_pod(emulator, "details-v1", NAMESPACE)
    dump = world.config_dump("details-v1")
    ran: list[list[str]] = []
    emulator.exec_handlers[NAMESPACE, "details-v1", "istio-proxy"] = lambda argv: (ran.append(argv) or dump, b"", 0)
    code, out, _ = run_cli(capsys, "ps", f"details-v1.{NAMESPACE}", "-c", kubeconfig, "--xds-port", "15010", "--plaintext",
                       "--semantic")  # fmt: skip
    assert (code, out) == (0, "Clusters Match\nListeners Match\nRoutes Match\n")
    assert ran == [["pilot-agent", "request", "GET", "config_dump"]]


def test_tls_port_with_a_service_account_token_and_every_istiod(
    emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = issue_tokens(emulator)

    def answer_as(istiod: str, proxy: str) -> Any:
        statuses = {"CDS": ("SYNCED", 1), "LDS": ("SYNCED", 1), "EDS": ("SYNCED", 1), "RDS": ("SYNCED", 1)}
        return lambda request: syncz_answer(istiod, [client_config(proxy, "Kubernetes", "1.28.0", statuses)])

    mesh_root = Authority.create()
    publish_root(emulator, mesh_root)
    with (
        FakeIstiod(answer_as("istiod-a", "web-1.shop"), tls=True, token="jwt-for-istio-ca", root=mesh_root) as first,
        FakeIstiod(answer_as("istiod-b", "web-2.shop"), tls=True, token="jwt-for-istio-ca", root=mesh_root) as second,
        FakeIstiod(answer_as("istiod-canary", "api-1.shop"), tls=True, token="jwt-for-istio-ca", root=mesh_root) as canary,
    ):
        for name, fake, revision in (("istiod-a", first, "default"), ("istiod-b", second, "default"),
                                     ("istiod-canary", canary, "canary")):  # fmt: skip
            istiod_pod(emulator, name, revision)
            emulator.forwards[ISTIO, name, 15012] = ("127.0.0.1", fake.port)
        code, out, err = run_cli(capsys, "ps", "-c", kubeconfig)
        assert (code, err) == (0, "")
        assert [line.split()[:3] for line in out.splitlines()[1:]] == [
            ["api-1.shop", "Kubernetes", "istiod-canary"], ["web-1.shop", "Kubernetes", "istiod-a"],
            ["web-2.shop", "Kubernetes", "istiod-b"],
        ]  # fmt: skip
        code, out, _ = run_cli(capsys, "ps", "-c", kubeconfig, "-r", "canary", "--context", "beta")
        assert [line.split()[0] for line in out.splitlines()[1:]] == ["api-1.shop"]
    assert all(call["spec"] == {"audiences": ["istio-ca"], "expirationSeconds": 600} for call in asked)
    assert asked[-1]["authorization"] == f"Bearer {BETA_TOKEN}", "the token is requested as the chosen context"
    assert {metadata["authorization"] for metadata in first.metadata + canary.metadata} == {"Bearer jwt-for-istio-ca"}


def test_the_pod_namespace_comes_from_the_context(
    emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    add_pod(emulator, "web-7c9d", "team-b", labels={"app": "web"})
    add_deployment(emulator, "web", "team-b", {"matchLabels": {"app": "web"}})
    dump = tmp_path / "web.json"
    dump.write_text(json.dumps({"configs": []}))

    def no_config(request: discovery_pb2.DiscoveryRequest) -> discovery_pb2.DiscoveryResponse:
        return discovery_pb2.DiscoveryResponse(type_url=request.type_url)

    with FakeIstiod(no_config) as istiod:
        code, _, err = run_cli(capsys, "ps", "deploy/web", "--context", "beta", "-c", kubeconfig, "--file", str(dump),
                           "--xds-address", istiod.address, "--plaintext")  # fmt: skip
    assert code == 1
    asked = [(request.type_url.rsplit("/", 1)[-1], list(request.resource_names)) for request in istiod.requests]
    assert asked == [("config_dump", ["web-7c9d.team-b"]), ("syncz", [])], "then which proxies are connected"
    assert err == (f"error: the control plane at {istiod.address} knows no proxy web-7c9d.team-b (neither connected "
                   "nor in its configuration); no proxy is connected\n")


def test_no_istiod(emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "ps", "-c", kubeconfig, "-i", "mesh-system")
    assert code == 1
    assert 'no running istiod pods match "app=istiod" in namespace "mesh-system"' in err


def test_vklog_logs_every_call_and_no_credential(
    world: World, emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    productpage_behind_istiod(world, emulator)
    argv = ("ps", "deploy/productpage", "-c", kubeconfig, "--xds-port", "15010", "--plaintext", "--semantic")
    code, out, err = run_cli(capsys, *argv)
    assert (code, err) == (0, ""), "no call log unless asked"
    code, out, err = run_cli(capsys, *argv, "--vklog", "1")
    assert code == 0 and out == "Clusters Match\nListeners Match\nRoutes Match\n"
    calls = err.splitlines()
    assert all(line.startswith("call: ") for line in calls)
    expected = [
        rf"call: GET https?://\S+/apis/apps/v1/namespaces/{NAMESPACE}/deployments/productpage -> HTTP 200 \(\d+ ms\)",
        rf"call: GET https?://\S+/api/v1/namespaces/{NAMESPACE}/pods\?\S*labelSelector=app%3Dproductpage\S* -> HTTP 200",
        rf"call: GET https?://\S+/api/v1/namespaces/{ISTIO}/pods\?\S*labelSelector=app%3Distiod\S* -> HTTP 200",
        rf"call: port-forward istiod-a.{ISTIO}:15010 -> open",
        rf"call: port-forward productpage-v1.{NAMESPACE}:15000 -> open",
        rf"call: GET /config_dump on productpage-v1.{NAMESPACE} \(Envoy admin, port 15000\) -> \d+ bytes",
        rf"call: ADS istio.io/debug/config_dump productpage-v1.{NAMESPACE} of the control plane at istiod-a "
        r"\(127.0.0.1:\d+\) -> \d+ resources, \d+ bytes",
    ]
    for pattern in expected:
        assert any(re.match(pattern, line) for line in calls), f"{pattern} not in\n{err}"
    assert "Bearer" not in err and "token" not in err.lower()
