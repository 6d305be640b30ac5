"""Kubeconfig loading and target resolution against the emulated API server."""

from __future__ import annotations

from pathlib import Path

import pytest
from emulator import MeshEmulator
from seeds import ALPHA_TOKEN, BETA_NAMESPACE, BETA_TOKEN, add_deployment, add_pod

from meshctl.errors import MeshctlError, UsageError
from meshctl.kube.client import load_client
from meshctl.kube.pods import PodRef, resolve_pods


def tokens_seen(emulator: MeshEmulator) -> set[str]:
    return {
        request.headers.get("Authorization", "").removeprefix("Bearer ")
        for request in emulator
        if request.resource is not None
    }


def test_current_context_without_namespace_means_default(
    emulator: MeshEmulator, kubeconfig: str
) -> None:
    add_pod(emulator, "reviews-v1-abc")
    client = load_client(kubeconfig, None)
    assert (client.context, client.namespace) == ("alpha", "default")
    assert resolve_pods(client, "reviews-v1-abc", None) == [PodRef("reviews-v1-abc", "default")]
    assert tokens_seen(emulator) == {ALPHA_TOKEN}


def test_context_switch_changes_credentials_and_default_namespace(
    emulator: MeshEmulator, kubeconfig: str
) -> None:
    add_pod(emulator, "ratings-v1-xyz", BETA_NAMESPACE)
    client = load_client(kubeconfig, "beta")
    assert (client.context, client.namespace) == ("beta", BETA_NAMESPACE)
    assert resolve_pods(client, "ratings-v1-xyz", None) == [PodRef("ratings-v1-xyz", BETA_NAMESPACE)]
    assert tokens_seen(emulator) == {BETA_TOKEN}


def test_kubeconfig_env_is_honoured(
    emulator: MeshEmulator, kubeconfig: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_pod(emulator, "p")
    monkeypatch.setenv("KUBECONFIG", f"/nonexistent/config:{kubeconfig}")
    client = load_client(None, "beta")
    assert client.namespace == BETA_NAMESPACE
    assert resolve_pods(client, "p.default", None) == [PodRef("p", "default")]


def test_unknown_context_and_missing_kubeconfig_are_clear_errors(
    kubeconfig: str, tmp_path: Path
) -> None:
    with pytest.raises(
        MeshctlError, match=r'context "gamma" not found in kubeconfig .*alpha, beta'
    ):
        load_client(kubeconfig, "gamma")
    broken = tmp_path / "broken"
    broken.write_text("clusters: [")
    with pytest.raises(MeshctlError, match=rf"(?s)^cannot load kubeconfig {broken}: .*set KUBECONFIG$"):
        load_client(str(broken), None)


def test_pod_dot_namespace_wins_over_the_namespace_flag(
    emulator: MeshEmulator, kubeconfig: str
) -> None:
    add_pod(emulator, "details-v1-1", "shop")
    add_pod(emulator, "details-v1-1", "other")
    client = load_client(kubeconfig, None)
    assert resolve_pods(client, "details-v1-1.shop", None, "other") == [
        PodRef("details-v1-1", "shop")
    ]
    assert resolve_pods(client, "details-v1-1", None, "other") == [PodRef("details-v1-1", "other")]
    assert resolve_pods(client, "pod/details-v1-1.shop", None) == [PodRef("details-v1-1", "shop")]


def test_missing_and_not_running_pods(emulator: MeshEmulator, kubeconfig: str) -> None:
    add_pod(emulator, "starting", "shop", phase="Pending")
    client = load_client(kubeconfig, None)
    with pytest.raises(MeshctlError, match=r'^pods "ghost" not found in namespace "shop"$'):
        resolve_pods(client, "ghost.shop", None)
    with pytest.raises(
        MeshctlError, match=r'pod "starting" in namespace "shop" is not running \(phase Pending\)'
    ):
        resolve_pods(client, "starting.shop", None)


def test_deployment_resolves_to_its_first_running_pod(
    emulator: MeshEmulator, kubeconfig: str
) -> None:
    add_deployment(emulator, "reviews", "shop", {"matchLabels": {"app": "reviews"}})
    add_deployment(
        emulator,
        "ratings",
        "shop",
        {
            "matchLabels": {"app": "ratings"},
            "matchExpressions": [{"key": "version", "operator": "In", "values": ["v2", "v3"]}],
        },
    )
    add_pod(emulator, "reviews-c", "shop", labels={"app": "reviews"})
    add_pod(emulator, "reviews-a", "shop", labels={"app": "reviews"}, phase="Pending")
    add_pod(emulator, "reviews-b", "shop", labels={"app": "reviews"})
    add_pod(emulator, "reviews-0", "other", labels={"app": "reviews"})
    add_pod(emulator, "ratings-a", "shop", labels={"app": "ratings", "version": "v1"})
    add_pod(emulator, "ratings-b", "shop", labels={"app": "ratings", "version": "v3"})
    client = load_client(kubeconfig, None)
    assert resolve_pods(client, "deploy/reviews.shop", None) == [PodRef("reviews-b", "shop")]
    assert resolve_pods(client, "deployment/ratings", None, "shop") == [PodRef("ratings-b", "shop")]
    assert resolve_pods(client, "deployments.apps/reviews.shop", None) == [
        PodRef("reviews-b", "shop")
    ]


def test_deployment_errors(emulator: MeshEmulator, kubeconfig: str) -> None:
    add_deployment(emulator, "idle", "shop", {"matchLabels": {"app": "idle"}})
    add_pod(emulator, "idle-1", "shop", labels={"app": "idle"}, phase="Failed")
    client = load_client(kubeconfig, None)
    with pytest.raises(MeshctlError, match=r'^deployments "nope" not found in namespace "shop"$'):
        resolve_pods(client, "deploy/nope.shop", None)
    with pytest.raises(
        MeshctlError, match='deployment "idle" in namespace "shop" has no running pods'
    ):
        resolve_pods(client, "deploy/idle.shop", None)


def test_selector_returns_every_running_match_in_the_namespace(
    emulator: MeshEmulator, kubeconfig: str
) -> None:
    for name, phase in (("web-2", "Running"), ("web-1", "Running"), ("web-3", "Pending")):
        add_pod(emulator, name, BETA_NAMESPACE, labels={"app": "web"}, phase=phase)
    add_pod(emulator, "web-9", "default", labels={"app": "web"})
    add_pod(emulator, "db-1", BETA_NAMESPACE, labels={"app": "db"})
    client = load_client(kubeconfig, "beta")
    assert resolve_pods(client, None, "app=web") == [
        PodRef("web-1", BETA_NAMESPACE),
        PodRef("web-2", BETA_NAMESPACE),
    ]
    assert resolve_pods(client, None, "app=web", "default") == [PodRef("web-9", "default")]
    with pytest.raises(
        MeshctlError, match=f'no running pods match "app=cache" in namespace "{BETA_NAMESPACE}"'
    ):
        resolve_pods(client, None, "app=cache")


def test_usage_errors(kubeconfig: str) -> None:
    client = load_client(kubeconfig, None)
    with pytest.raises(UsageError, match="not both"):
        resolve_pods(client, "p", "app=x")
    with pytest.raises(UsageError, match="name a pod"):
        resolve_pods(client, None, None)
    with pytest.raises(UsageError, match='unsupported resource type "svc"'):
        resolve_pods(client, "svc/reviews", None)


def test_a_missing_kubeconfig_is_said_to_be_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not the client library's "Invalid kube-config file. No configuration found.": the file
    is not there, and the message says which one and where the name came from."""
    from testsupport import run_cli

    absent = tmp_path / "absent"
    with pytest.raises(MeshctlError) as given:
        load_client(str(absent), None)
    assert str(given.value) == f"kubeconfig {absent} does not exist (given with -c/--kubeconfig)"
    monkeypatch.setenv("KUBECONFIG", f"{absent}:{tmp_path / 'also-absent'}")
    with pytest.raises(MeshctlError) as from_env:
        load_client(None, None)
    assert str(from_env.value) == (f"kubeconfig {absent}:{tmp_path / 'also-absent'} does not exist "
                                   "(none of the files KUBECONFIG names does)")
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, err = run_cli(capsys, "pc", "clusters", "web-1")
    assert (code, out) == (1, "")
    assert err == (f"error: kubeconfig {tmp_path}/.kube/config does not exist (the default; pass -c/--kubeconfig "
                   "or set KUBECONFIG)\n")
