"""`meshctl serve --webhook-address`: the webhooks in the control plane's own process, next to
xDS, answering `/inject` and `/validate` over HTTPS with a certificate for istiod's Service."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonpatch
import pytest
from cryptography import x509
from webhook_support import admission_review, patch_of

from meshctl.loopback import free_port, stop_process, wait_accepting

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "web", "image": "web:1"}]}}


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    workdir = tmp_path_factory.mktemp("serve-webhooks")
    (workdir / "mesh").mkdir()
    port = free_port()
    log = workdir / "serve.log"
    argv = [sys.executable, "-m", "meshctl", "serve", "--config-dir", str(workdir / "mesh"),
            "--xds-address", f"127.0.0.1:{free_port()}", "--debug-address", "", "--webhook-address",
            f"127.0.0.1:{port}", "--sidecar-image", "registry.example.com/meshctl:7"]
    with log.open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_accepting(port, 30, process, "meshctl serve", logs=[log])
        yield port
    finally:
        stop_process(process)
    assert "webhooks listening" in Path(log).read_text()


def post(port: int, path: str, body: dict[str, object]) -> dict[str, object]:
    import http.client

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # serve's CA lives in its process; the name is checked below
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        answer: dict[str, object] = json.loads(response.read())
        return answer
    finally:
        connection.close()


def test_certificate_names_istiods_service(serve: int) -> None:
    certificate = x509.load_pem_x509_certificate(ssl.get_server_certificate(("127.0.0.1", serve)).encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "istiod.istio-system.svc" in names.get_values_for_type(x509.DNSName)


def test_serve_injects_with_its_image(serve: int) -> None:
    answer = post(serve, "/inject", admission_review(POD, namespace="shop"))
    pod = jsonpatch.apply_patch(POD, patch_of(answer))
    assert [c["name"] for c in pod["spec"]["containers"]] == ["web", "istio-proxy"]
    assert pod["spec"]["containers"][1]["image"] == "registry.example.com/meshctl:7"


def test_serve_validates(serve: int) -> None:
    gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "g"}, "spec": {}}
    response = post(serve, "/validate", admission_review(gateway, namespace="edge"))["response"]
    assert response == {"uid": "7b2e-01", "allowed": False,
                        "status": {"message": "Gateway edge/g: spec.servers: required field is missing"}}


def test_webhook_address_in_use_is_a_clear_error(serve: int, tmp_path: Path) -> None:
    (tmp_path / "mesh").mkdir()
    result = subprocess.run([sys.executable, "-m", "meshctl", "serve", "--config-dir", str(tmp_path / "mesh"),
                             "--xds-address", f"127.0.0.1:{free_port()}", "--debug-address", "",
                             "--webhook-address", f"127.0.0.1:{serve}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen for webhooks on 127.0.0.1:{serve}" in result.stderr
    assert "Traceback" not in result.stderr
