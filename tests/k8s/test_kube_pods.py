"""Reading a pod's Envoy admin endpoint: port-forward to a real Envoy, and the exec fallback."""

from __future__ import annotations

import json

import pytest
from emulator import MeshEmulator
from seeds import add_pod

from meshctl.errors import MeshctlError
from meshctl.inspect.acquire import DumpSource
from meshctl.inspect.acquire.location import Location
from meshctl.inspect.acquire.pod import PodSource
from meshctl.kube.client import lazy_client, load_client
from meshctl.kube.pods import PodRef

CANNED_DUMP = json.dumps(
    {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
                "dynamic_active_clusters": [
                    {"cluster": {"name": f"outbound|9080||svc-{i:04d}.shop.svc.cluster.local"}}
                    for i in range(2000)
                ],
            }
        ]
    }
).encode()


def open_pod_sources(
    target: str | None, selector: str | None, namespace: str | None, kubeconfig: str, context: str | None, port: int
) -> list[DumpSource]:
    """The sources proxy-config reads for these flags."""
    location = Location(lazy_client(kubeconfig, context), target=target, selector=selector, namespace=namespace,
                        admin_port=port)
    return location.sources()


def forwards_to(emulator: MeshEmulator) -> list[str]:
    return [f"{r.name}.{r.namespace}" for r in emulator if r.subresource == "portforward"]


class ExecRecorder:
    """An exec handler that answers like `pilot-agent request` and remembers what it ran."""

    def __init__(self, stdout: bytes, stderr: bytes = b"", exit_code: int = 0) -> None:
        self.answer = (stdout, stderr, exit_code)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[bytes, bytes, int]:
        self.calls.append(argv)
        return self.answer


def test_port_forward_carries_a_real_envoy_admin_request(
    emulator: MeshEmulator, kubeconfig: str, envoy_admin: tuple[str, int]
) -> None:
    add_pod(emulator, "reviews-v1-abc", "shop")
    emulator.forwards["shop", "reviews-v1-abc", 15000] = envoy_admin
    [source] = open_pod_sources("reviews-v1-abc.shop", None, None, kubeconfig, None, 15000)
    assert source.name == "reviews-v1-abc.shop"

    dump = json.loads(source.get("config_dump?resource=static_clusters"))
    [entry] = dump["configs"]
    assert entry["@type"] == "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster"
    assert entry["cluster"]["name"] == "static-probe"
    assert "active loggers:" in source.post("/logging").decode()
    assert forwards_to(emulator) == ["reviews-v1-abc.shop"] * 2


def test_envoy_http_errors_are_reported_not_retried_over_exec(
    emulator: MeshEmulator, kubeconfig: str, envoy_admin: tuple[str, int]
) -> None:
    add_pod(emulator, "p", "shop")
    emulator.forwards["shop", "p", 15000] = envoy_admin
    recorder = emulator.exec_handlers["shop", "p", "istio-proxy"] = ExecRecorder(b"{}")
    [source] = open_pod_sources("p.shop", None, None, kubeconfig, None, 15000)
    with pytest.raises(
        MeshctlError,
        match=r"Envoy admin on p\.shop answered HTTP 400 to GET /config_dump.*FieldMask",
    ):
        source.get("config_dump?mask=bogus.field")
    assert recorder.calls == []


def test_custom_admin_port(
    emulator: MeshEmulator, kubeconfig: str, envoy_admin: tuple[str, int]
) -> None:
    add_pod(emulator, "gw", "ingress")
    emulator.forwards["ingress", "gw", 19000] = envoy_admin
    [source] = open_pod_sources("gw", None, "ingress", kubeconfig, None, 19000)
    assert b"static-probe" in source.get("config_dump?resource=static_clusters")


def test_exec_fallback_returns_the_whole_dump(emulator: MeshEmulator, kubeconfig: str) -> None:
    add_pod(emulator, "p", "shop")
    recorder = emulator.exec_handlers["shop", "p", "istio-proxy"] = ExecRecorder(CANNED_DUMP, b"")
    [source] = open_pod_sources("p.shop", None, None, kubeconfig, None, 15000)

    body = source.get("config_dump?resource=dynamic_active_clusters")
    assert len(body) == len(CANNED_DUMP) > 64 * 1024
    assert body == CANNED_DUMP
    assert len(json.loads(body)["configs"][0]["dynamic_active_clusters"]) == 2000
    assert source.post("logging?level=debug") == CANNED_DUMP
    assert recorder.calls == [
        ["pilot-agent", "request", "GET", "config_dump?resource=dynamic_active_clusters"],
        ["pilot-agent", "request", "POST", "logging?level=debug"],
    ]
    assert forwards_to(emulator) == ["p.shop"], "after one failed port-forward, go straight to exec"


def test_exec_fallback_waits_for_output_that_arrives_slowly(
    emulator: MeshEmulator, kubeconfig: str
) -> None:
    add_pod(emulator, "slow", "shop")
    emulator.exec_handlers["shop", "slow", "istio-proxy"] = ExecRecorder(CANNED_DUMP)
    emulator.exec_frame_delay = 0.02
    [source] = open_pod_sources("slow.shop", None, None, kubeconfig, None, 15000)
    assert source.get("config_dump") == CANNED_DUMP


def test_exec_fallback_non_zero_exit_is_a_clear_error(
    emulator: MeshEmulator, kubeconfig: str
) -> None:
    add_pod(emulator, "p", "shop")
    emulator.exec_handlers["shop", "p", "istio-proxy"] = ExecRecorder(
        b"", b"Error: received status 503 from Envoy\n", exit_code=1
    )
    [source] = open_pod_sources("p.shop", None, None, kubeconfig, None, 15000)
    with pytest.raises(MeshctlError) as caught:
        source.get("certs")
    message = str(caught.value)
    assert message.startswith("cannot GET /certs on p.shop: port-forward to port 15000 failed (")
    assert "connection refused" in message
    assert "`pilot-agent request GET certs` in container istio-proxy exited with code 1" in message
    assert message.endswith("received status 503 from Envoy")


def test_exec_without_the_sidecar_container(emulator: MeshEmulator, kubeconfig: str) -> None:
    add_pod(emulator, "plain", "shop", containers=("app",))
    [source] = open_pod_sources("plain.shop", None, None, kubeconfig, None, 15000)
    with pytest.raises(
        MeshctlError, match=r"failed \(container istio-proxy is not valid for pod plain \(HTTP 400"
    ):
        source.get("config_dump")


def test_exec_failure_without_exit_code(emulator: MeshEmulator, kubeconfig: str) -> None:
    add_pod(emulator, "distroless", "shop")
    [source] = open_pod_sources("distroless.shop", None, None, kubeconfig, None, 15000)
    with pytest.raises(
        MeshctlError, match=r'failed \(.*exec: "pilot-agent": executable file not found'
    ):
        source.get("config_dump")


def test_pod_gone_between_resolution_and_request(emulator: MeshEmulator, kubeconfig: str) -> None:
    source = PodSource(load_client(kubeconfig, None), PodRef("ghost", "shop"))
    with pytest.raises(MeshctlError) as caught:
        source.get("config_dump")
    assert str(caught.value).count('pods "ghost" not found (HTTP 404 Not Found)') == 2


def test_selector_opens_one_source_per_pod(
    emulator: MeshEmulator, kubeconfig: str, envoy_admin: tuple[str, int]
) -> None:
    for name in ("web-b", "web-a"):
        add_pod(emulator, name, "team-b", labels={"app": "web"})
        emulator.forwards["team-b", name, 15000] = envoy_admin
    sources = open_pod_sources(None, "app=web", None, kubeconfig, "beta", 15000)
    assert [s.name for s in sources] == ["web-a.team-b", "web-b.team-b"]
    for source in sources:
        assert json.loads(source.get("config_dump?resource=static_clusters"))["configs"]
