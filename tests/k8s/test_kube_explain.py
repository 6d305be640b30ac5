"""`meshctl explain POD` through Kubernetes: the pod found with the official client over HTTP,
its Envoy admin reached by a port-forward of the emulated API server to a real Envoy that
`meshctl serve` configured; the answer is the one `--admin` gives for that Envoy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator import MeshEmulator
from seeds import add_pod

from meshctl.demo.runtime import LocalMesh
from testsupport import run_cli


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with LocalMesh(tmp_path_factory.mktemp("kube-explain"), client_names=("productpage",)) as running:
        yield running


def test_pod_target_is_explained_from_its_envoy(mesh: LocalMesh, emulator: MeshEmulator, kubeconfig: str,
                                                capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    client, envoy = mesh.layout.clients[0], mesh.envoys[0]
    add_pod(emulator, client.pod, "default", labels={"app": "productpage"})
    host, _, port = envoy.admin_url.removeprefix("http://").rpartition(":")
    emulator.forwards["default", client.pod, 15000] = (host, int(port))
    request = ["--url", "http://reviews:9080/reviews/0", "-H", "end-user: jason", "--address", client.bind, "-o", "json"]

    code, out, err = run_cli(capsys, "explain", client.pod, "-c", kubeconfig, *request)
    assert code == 0, err
    by_pod = json.loads(out)
    code, out, err = run_cli(capsys, "explain", "--admin", envoy.admin_url, *request)
    assert code == 0, err
    assert by_pod == json.loads(out)
    assert by_pod["outcome"]["summary"].startswith("forwarded to outbound|9080|v2|reviews.default.svc.cluster.local")
    forwards = {(r.namespace, r.name, r.url.query.get("ports")) for r in emulator if r.subresource == "portforward"}
    assert forwards == {("default", client.pod, "15000")}


def test_unknown_pod_is_an_error_naming_it(emulator: MeshEmulator, kubeconfig: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "explain", "nowhere-abc.default", "-c", kubeconfig, "--url", "http://reviews:9080/")
    assert (code, err) == (1, 'error: pods "nowhere-abc" not found in namespace "default"\n')
