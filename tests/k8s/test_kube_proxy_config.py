"""`meshctl proxy-config` on pods, end to end: the CLI, the official client over HTTP, and the
emulated API server, whose pods answer like a sidecar's `pilot-agent request` (no port-forward
is registered, so every request takes the exec fallback).

The flags that pick the cluster (`-c`, `--context`), the pods (a Deployment, `-l`, `-n`) and
the admin port are checked in the requests the API server received.
"""

from __future__ import annotations

import pytest
from emulator import MeshEmulator
from seeds import BETA_TOKEN, add_deployment, add_pod
from testsupport import ROOT, run_cli

INSPECT = ROOT / "tests" / "inspect"
SIDECAR_DUMP = (INSPECT / "data" / "sidecar_dump.json").read_bytes()
LOGGERS = b"active loggers:\n  admin: warning\n  http: warning\n"


def golden(name: str) -> str:
    return (INSPECT / "golden" / name).read_bytes().decode()


class Sidecar:
    """`pilot-agent request` in an istio-proxy container: the saved dump for every GET, the
    logger listing for every POST, each command remembered."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[bytes, bytes, int]:
        self.calls.append(argv)
        return (LOGGERS if argv[2] == "POST" else SIDECAR_DUMP), b"", 0

    @property
    def posts(self) -> list[str]:
        return [argv[3] for argv in self.calls if argv[2] == "POST"]


def sidecar_pod(emulator: MeshEmulator, name: str, namespace: str = "default") -> Sidecar:
    add_pod(emulator, name, namespace, labels={"app": "productpage"})
    sidecar = emulator.exec_handlers[namespace, name, "istio-proxy"] = Sidecar()
    return sidecar


def test_deployment_target_with_kubeconfig_context_and_admin_port(
    emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_deployment(emulator, "productpage", "default", {"matchLabels": {"app": "productpage"}})
    sidecar = sidecar_pod(emulator, "productpage-v1-abc")
    code, out, err = run_cli(
        capsys, "pc", "l", "deploy/productpage.default", "-c", kubeconfig, "--context", "beta",
        "--proxy-admin-port", "15001",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out == golden("listeners.txt")
    forwards = [r for r in emulator if r.subresource == "portforward"]
    assert [(r.namespace, r.name, r.url.query.get("ports")) for r in forwards] == [
        ("default", "productpage-v1-abc", "15001")
    ]
    assert {r.headers.get("Authorization") for r in emulator if r.resource is not None} == {f"Bearer {BETA_TOKEN}"}
    assert sidecar.calls == [["pilot-agent", "request", "GET", "config_dump?mask=dynamic_listeners,static_listeners"]]


def test_selector_prints_each_pod(emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("productpage-v1-def", "productpage-v1-abc"):
        sidecar_pod(emulator, name)
    sidecar_pod(emulator, "productpage-v1-xyz", "other")
    code, out, _ = run_cli(capsys, "pc", "b", "-l", "app=productpage", "-n", "default", "-o", "short", "-c", kubeconfig)
    assert code == 0
    summary = golden("bootstrap.txt")
    assert out == f"productpage-v1-abc.default:\n{summary}\nproductpage-v1-def.default:\n{summary}"


@pytest.mark.parametrize(
    ("argv", "posts"),
    [
        ([], ["logging"]),
        (["--level", "debug"], ["logging", "logging?level=debug"]),
        (["--level", "http:debug,level=warn"], ["logging", "logging?level=warning", "logging?http=debug"]),
        (["--level", "ns::admin=trace"], ["logging", "logging?admin=trace"]),
        (["-r"], ["logging", "logging?level=warning"]),
    ],
)
def test_log_levels(
    emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str], argv: list[str], posts: list[str]
) -> None:
    sidecar = sidecar_pod(emulator, "productpage-v1-abc")
    code, out, _ = run_cli(capsys, "pc", "o", "productpage-v1-abc", "-c", kubeconfig, *argv)
    assert code == 0
    assert sidecar.posts == posts
    assert out == f"productpage-v1-abc.default:\n{LOGGERS.decode()}"


@pytest.mark.parametrize(
    ("level", "message"),
    [("loud", "unrecognized logging level: loud"), ("redis:debug", "unrecognized logger name: redis")],
)
def test_log_level_errors(
    emulator: MeshEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str], level: str, message: str
) -> None:
    sidecar = sidecar_pod(emulator, "pod")
    code, _, err = run_cli(capsys, "pc", "log", "pod", "--level", level, "-c", kubeconfig)
    assert code == 64
    assert message in err
    assert sidecar.posts == ["logging"], "nothing is changed before the whole request is understood"
