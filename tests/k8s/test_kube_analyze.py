"""`meshctl analyze --kubernetes`: what the emulated API server holds, listed over real HTTP
with the official client, analyzed like files, with files applied over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from emulator import MeshEmulator
from seeds import add_pod

from meshctl import analyze
from meshctl.analyze import report
from meshctl.analyze.inputs import gather
from meshctl.cli import main
from meshctl.kube.client import load_client
from meshctl.kube.objects import list_objects
from meshctl.model.meshconfig import MeshConfig


def _cluster_lines(kubeconfig: str, files: list[str], namespace: str | None) -> list[str]:
    client = load_client(kubeconfig, None)
    cluster = list(list_objects(client))
    gathered = gather(files, namespace or client.namespace, MeshConfig(), cluster=cluster)
    assert gathered.assumed == []  # a cluster has its own ingress gateway, or none
    findings = [*gathered.schema_findings, *analyze.run(gathered.resources, gathered.mesh)]
    return report.render(report.keep(findings, namespace, []), "log").splitlines()


def test_analyze_cluster_objects(emulator: MeshEmulator, kubeconfig: str, tmp_path: Path) -> None:
    load_client(kubeconfig, None).core.create_namespaced_service("shop", {
        "metadata": {"name": "cart"},
        "spec": {"selector": {"app": "cart"}, "ports": [{"name": "web", "port": 8080}]},
    })
    add_pod(emulator, "cart-1", "shop", labels={"app": "cart"})
    add_pod(emulator, "cart-2", "shop", labels={"app": "cart"}, containers=("cart",))
    assert _cluster_lines(kubeconfig, [], None) == [
        "Info [IST0118] (Service shop/cart) Port name web (port: 8080, targetPort: 8080) doesn't follow the naming "
        "convention of Istio port.",
    ]
    assert _cluster_lines(kubeconfig, [], "default") == []
    # Files are applied over the cluster: this Service replaces the cluster's.
    fixed = tmp_path / "cart.yaml"
    fixed.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: cart, namespace: shop}\n"
                     "spec: {selector: {app: cart}, ports: [{name: http-web, port: 8080}]}\n")
    assert _cluster_lines(kubeconfig, [str(fixed)], "shop") == []


def test_unreachable_cluster_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert main(["analyze", "--kubernetes", "-c", str(config)]) == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:9" in capsys.readouterr().err
