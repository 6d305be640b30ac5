"""`/inject` over real HTTPS: an AdmissionReview of a pod as the API server sends it, the JSON
patch in the answer applied with an independent RFC 6902 implementation (`jsonpatch`), and the
patched pod checked: the same sidecar kube-inject gives the pod's Deployment, nothing else
touched, a second pass changing nothing, opt-outs and refusals answered as istiod answers."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml
from testsupport import run_cli
from webhook_support import DEPLOYMENT_POD, Client, admission_review, patch_of, running_webhooks

POD = DEPLOYMENT_POD


@pytest.fixture(scope="module")
def webhooks() -> Iterator[tuple[int, bytes]]:
    with running_webhooks() as running:
        yield running


@pytest.fixture
def client(webhooks: tuple[int, bytes]) -> Iterator[Client]:
    client = Client(*webhooks)
    yield client
    client.close()


def injected(client: Client, pod: dict[str, Any], path: str = "/inject", **review: Any) -> dict[str, Any]:
    answer = client.review(path, admission_review(pod, **{"namespace": "bookinfo", **review}))
    assert answer["response"]["allowed"] is True, answer
    patched: dict[str, Any] = jsonpatch.apply_patch(pod, patch_of(answer))
    return patched


def test_the_answer_is_an_admission_review_for_the_request(client: Client) -> None:
    answer = client.review("/inject", admission_review(POD, uid="d3adb33f"))
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == "d3adb33f"
    assert answer["response"]["patchType"] == "JSONPatch"


def test_patched_pod_has_the_sidecar_kube_inject_gives_its_deployment(
        client: Client, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pod = injected(client, POD)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "reviews-v1", "namespace": "bookinfo"},
                  "spec": {"selector": {"matchLabels": {"app": "reviews"}},
                           "template": {"metadata": {"labels": POD["metadata"]["labels"]}, "spec": POD["spec"]}}}
    (tmp_path / "deployment.yaml").write_text(json.dumps(deployment))
    code, out, err = run_cli(capsys, "kube-inject", "-f", str(tmp_path / "deployment.yaml"))
    assert code == 0, err
    template = yaml.safe_load(out.split("---\n")[0])["spec"]["template"]
    assert pod["spec"] == template["spec"]
    assert pod["metadata"]["labels"] == template["metadata"]["labels"]
    assert pod["metadata"]["annotations"] == template["metadata"]["annotations"]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][1]["env"]}
    assert env["ISTIO_META_OWNER"] == "kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews-v1"
    assert env["ISTIO_META_WORKLOAD_NAME"] == "reviews-v1"


def test_nothing_but_the_sidecar_changes(client: Client) -> None:
    pod = injected(client, POD)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["reviews", "istio-proxy"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["istio-init"]
    assert pod["spec"]["containers"][0] == POD["spec"]["containers"][0]
    assert pod["metadata"]["managedFields"] == POD["metadata"]["managedFields"]
    assert pod["metadata"]["ownerReferences"] == POD["metadata"]["ownerReferences"]
    unchanged = {key: value for key, value in POD["spec"].items() if key != "containers"}
    assert {key: pod["spec"][key] for key in unchanged} == unchanged
    assert pod["status"] == {}


def test_an_injected_pod_is_injected_again_to_the_same_pod(client: Client) -> None:
    once = injected(client, POD)
    assert injected(client, once) == once


def test_a_pod_named_in_its_request_only_takes_the_requests_namespace(client: Client) -> None:
    pod = injected(client, POD, namespace="reviews-ns")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][1]["env"]}
    assert env["ISTIO_META_OWNER"] == "kubernetes://apis/apps/v1/namespaces/reviews-ns/deployments/reviews-v1"


@pytest.mark.parametrize(("change", "namespace"), [
    ({"metadata": {"labels": {"sidecar.istio.io/inject": "false"}}}, "bookinfo"),
    ({"metadata": {"annotations": {"sidecar.istio.io/inject": "false"}}}, "bookinfo"),
    ({"spec": {"hostNetwork": True}}, "bookinfo"),
    ({}, "kube-system"),
], ids=["label", "annotation", "host-network", "kube-system"])
def test_opted_out_pods_are_allowed_unchanged(client: Client, change: dict[str, Any], namespace: str) -> None:
    pod = copy.deepcopy(POD)
    for section, values in change.items():
        for key, value in values.items():
            if isinstance(value, dict):
                pod[section].setdefault(key, {}).update(value)
            else:
                pod[section][key] = value
    response = client.review("/inject", admission_review(pod, namespace=namespace))["response"]
    assert response == {"uid": "7b2e-01", "allowed": True}


def test_the_inject_label_wins_over_the_annotation(client: Client) -> None:
    pod = copy.deepcopy(POD)
    pod["metadata"]["labels"]["sidecar.istio.io/inject"] = "true"
    pod["metadata"]["annotations"] = {"sidecar.istio.io/inject": "false"}
    assert [c["name"] for c in injected(client, pod)["spec"]["containers"]] == ["reviews", "istio-proxy"]


def test_bad_annotations_refuse_the_pod_with_istios_message(client: Client) -> None:
    pod = copy.deepcopy(POD)
    pod["metadata"]["annotations"] = {"traffic.sidecar.istio.io/excludeOutboundPorts": "mysql",
                                      "sidecar.istio.io/interceptionMode": "CAPTURE"}
    response = client.review("/inject", admission_review(pod))["response"]
    assert response["allowed"] is False
    assert "patch" not in response
    assert response["status"]["message"] == (
        "invalid value 'CAPTURE' for annotation 'sidecar.istio.io/interceptionMode': interceptionMode invalid, "
        "use REDIRECT,TPROXY,NONE: CAPTURE; invalid value 'mysql' for annotation "
        "'traffic.sidecar.istio.io/excludeOutboundPorts': excludeOutboundPorts invalid: failed parsing port "
        "'mysql': failed parsing port 'mysql': strconv.ParseUint: parsing \"mysql\": invalid syntax")


def test_cluster_and_network_from_the_path(client: Client) -> None:
    pod = injected(client, POD, path="/inject/cluster/east--slash--1/net/network2")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][1]["env"]}
    assert env["ISTIO_META_CLUSTER_ID"] == "east/1"
    assert env["ISTIO_META_NETWORK"] == "network2"


def test_v1beta1_is_answered_in_v1beta1(client: Client) -> None:
    answer = client.review("/inject", admission_review(POD, version="v1beta1"))
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"
    assert answer["response"]["allowed"] is True


def test_istioctls_remote_request_without_uid_or_operation(client: Client) -> None:
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"object": {**POD, "metadata": {"name": "p", "labels": {"app": "p"}}},
                          "name": "p", "namespace": "default"}}
    answer = client.review("/inject", review)
    assert answer["response"]["uid"] == ""
    assert answer["response"]["allowed"] is True
    assert patch_of(answer)


@pytest.mark.parametrize(("method", "path", "content_type", "body", "status", "text"), [
    ("GET", "/inject", "application/json", b"{}", 405, "only POST is supported\n"),
    ("POST", "/inject", "text/yaml", b"{}", 415, "contentType=text/yaml, expect application/json\n"),
    ("POST", "/inject", "application/json", b"", 400, "no body found\n"),
    ("POST", "/mutate", "application/json", b"{}", 404, "404 page not found\n"),
], ids=["method", "content-type", "empty", "path"])
def test_http_checks_are_istiods(client: Client, method: str, path: str, content_type: str, body: bytes,
                                 status: int, text: str) -> None:
    assert client.post(path, body, content_type, method) == (status, text.encode())


def test_a_body_over_6_mib_is_refused_before_it_is_read(client: Client) -> None:
    """Answered 413 from the Content-Length alone, and the connection closed."""
    sock = client.connection.sock
    sock.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {6 * 1024 * 1024 + 1}\r\n\r\n".encode())
    head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413 ")
    assert "Connection: close" in head


def test_a_body_that_is_no_admission_review_is_refused_in_v1beta1(client: Client) -> None:
    status, body = client.post("/inject", b'{"kind": "Pod"}')
    answer = json.loads(body)
    assert status == 200
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"
    assert answer["response"]["allowed"] is False
    assert "unsupported AdmissionReview" in answer["response"]["status"]["message"]
