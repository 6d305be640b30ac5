"""`meshctl serve --webhook-address`: the webhooks in the control plane's own process, next to
xDS, answering `/inject` and `/validate` over HTTPS with a certificate for istiod's Service."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml
from cryptography import x509
from webhook_support import Client, admission_review, patch_of

from meshctl.loopback import free_port, stop_process, wait_accepting

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "web", "image": "web:1"}]}}


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, bytes]]:
    """serve's port for webhooks, and the root in its CA directory (the caBundle)."""
    workdir = tmp_path_factory.mktemp("serve-webhooks")
    (workdir / "mesh").mkdir()
    (workdir / "mesh.yaml").write_text("meshId: mesh-7\n")
    port = free_port()
    log = workdir / "serve.log"
    argv = [sys.executable, "-m", "meshctl", "serve", "--config-dir", str(workdir / "mesh"),
            "--xds-address", f"127.0.0.1:{free_port()}", "--debug-address", "", "--ca-address", "",
            "--ca-dir", str(workdir / "ca"), "--webhook-address", f"127.0.0.1:{port}",
            "--sidecar-image", "registry.example.com/meshctl:7", "--mesh-config", str(workdir / "mesh.yaml")]
    with log.open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_accepting(port, 30, process, "meshctl serve", logs=[log])
        yield port, (workdir / "ca" / "root-cert.pem").read_bytes()
    finally:
        stop_process(process)
    assert "webhooks listening" in Path(log).read_text()


def post(serve: tuple[int, bytes], path: str, body: dict[str, Any]) -> dict[str, Any]:
    client = Client(*serve)
    try:
        return client.review(path, body)
    finally:
        client.close()


def test_certificate_names_istiods_service_and_chains_to_the_ca_directorys_root(serve: tuple[int, bytes]) -> None:
    client = Client(*serve)  # verifies the chain against the root, for istiod.istio-system.svc
    try:
        der = client.connection.sock.getpeercert(binary_form=True)
    finally:
        client.close()
    names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "istiod.istio-system.svc" in names.value.get_values_for_type(x509.DNSName)


def test_serve_injects_with_its_image_and_mesh_config(serve: tuple[int, bytes]) -> None:
    answer = post(serve, "/inject", admission_review(POD, namespace="shop"))
    pod = jsonpatch.apply_patch(POD, patch_of(answer))
    assert [c["name"] for c in pod["spec"]["containers"]] == ["web", "istio-proxy"]
    assert pod["spec"]["containers"][1]["image"] == "registry.example.com/meshctl:7"
    assert {"name": "ISTIO_META_MESH_ID", "value": "mesh-7"} in pod["spec"]["containers"][1]["env"]


def test_serve_validates(serve: tuple[int, bytes]) -> None:
    gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "g"}, "spec": {}}
    response = post(serve, "/validate", admission_review(gateway, namespace="edge"))["response"]
    assert response == {"uid": "7b2e-01", "allowed": False,
                        "status": {"message": "Gateway edge/g: spec.servers: required field is missing"}}


def test_a_revisioned_serve_answers_as_its_service_with_the_installed_ca_bundle(tmp_path: Path) -> None:
    """serve in the Deployment `meshctl install -r canary -i mesh` writes (its REVISION and
    POD_NAMESPACE): the API server, dialling istiod-canary.mesh.svc with the caBundle of the
    installed MutatingWebhookConfiguration, verifies it, and the sidecars it injects talk to
    that control plane."""
    (tmp_path / "mesh").mkdir()
    ca_dir = tmp_path / "ca"
    manifest = subprocess.run([sys.executable, "-m", "meshctl", "install", "-r", "canary", "-i", "mesh"],
                              capture_output=True, text=True, timeout=60, check=True).stdout
    objects = [doc for doc in yaml.safe_load_all(manifest) if doc]
    (deployment,) = [obj for obj in objects if obj["kind"] == "Deployment"]
    env = {e["name"]: e.get("value", "mesh") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    port = free_port()
    argv = [sys.executable, "-m", "meshctl", "serve", "--config-dir", str(tmp_path / "mesh"),
            "--xds-address", f"127.0.0.1:{free_port()}", "--debug-address", "", "--ca-address", "",
            "--ca-dir", str(ca_dir), "--webhook-address", f"127.0.0.1:{port}"]
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, "POD_NAMESPACE": env["POD_NAMESPACE"], "REVISION": env["REVISION"]})
    try:
        wait_accepting(port, 30, process, "meshctl serve", logs=[log])
        installed = subprocess.run([sys.executable, "-m", "meshctl", "install", "-r", "canary", "-i", "mesh",
                                    "--ca-bundle", str(ca_dir / "root-cert.pem")],
                                   capture_output=True, text=True, timeout=60, check=True).stdout
        (mutating,) = [obj for obj in yaml.safe_load_all(installed) if obj and obj["kind"] == "MutatingWebhookConfiguration"]
        hook = mutating["webhooks"][0]["clientConfig"]
        service = f"{hook['service']['name']}.{hook['service']['namespace']}.svc"
        client = Client(port, base64.b64decode(hook["caBundle"]), service)
        try:
            answer = client.review(hook["service"]["path"], admission_review(POD, namespace="shop"))
        finally:
            client.close()
    finally:
        stop_process(process)
    assert service == "istiod-canary.mesh.svc"
    pod = jsonpatch.apply_patch(POD, patch_of(answer))
    args = pod["spec"]["containers"][1]["args"]
    assert args[args.index("--xds-address") + 1] == "istiod-canary.mesh.svc:15010"
    assert args[args.index("--ca-address") + 1] == "istiod-canary.mesh.svc:15012"
    assert pod["metadata"]["annotations"]["istio.io/rev"] == "canary"


def test_webhook_address_in_use_is_a_clear_error(serve: tuple[int, bytes], tmp_path: Path) -> None:
    (tmp_path / "mesh").mkdir()
    result = subprocess.run([sys.executable, "-m", "meshctl", "serve", "--config-dir", str(tmp_path / "mesh"),
                             "--xds-address", f"127.0.0.1:{free_port()}", "--debug-address", "", "--ca-address", "",
                             "--ca-dir", str(tmp_path / "ca"), "--webhook-address", f"127.0.0.1:{serve[0]}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen for webhooks on 127.0.0.1:{serve[0]}" in result.stderr
    assert "Traceback" not in result.stderr
