"""In a pod without a kubeconfig, meshctl talks to its own cluster as the pod's ServiceAccount."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl.errors import MeshctlError
from meshctl.kube.client import IN_CLUSTER, in_cluster_client, load_client


@pytest.fixture
def pod_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment Kubernetes gives a pod, and no kubeconfig anywhere."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    mounted = tmp_path / "serviceaccount"
    mounted.mkdir()
    (mounted / "token").write_text("pod-token")
    (mounted / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    (mounted / "namespace").write_text("istio-system\n")
    return mounted


def test_the_mounted_service_account_is_the_identity_and_namespace(pod_env: Path) -> None:
    client = in_cluster_client(str(pod_env))
    assert client.host == "https://10.96.0.1:443"
    assert client.namespace == "istio-system" and client.context == IN_CLUSTER
    assert client.configuration.auth_settings()["BearerToken"]["value"].lower() == "bearer pod-token"
    assert client.configuration.ssl_ca_cert == str(pod_env / "ca.crt")


def test_without_a_kubeconfig_a_pod_uses_in_cluster_config(pod_env: Path) -> None:
    with pytest.raises(MeshctlError, match="in-cluster config .*/var/run/secrets/kubernetes.io/serviceaccount"):
        load_client(None, None)  # this test does not run in a pod: the default mount is missing
    with pytest.raises(MeshctlError, match='context "prod" given, but there is no kubeconfig'):
        load_client(None, "prod")
