"""`/validate` over real HTTPS refuses each malformed object of the validate tests
(tests/config) with exactly the message `meshctl validate` prints for it, minus the `FILE:LINE`
a cluster object does not have; valid objects, other API groups and other operations pass."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from testsupport import run_cli
from webhook_support import Client, admission_review, running_webhooks

from meshctl.config.kinds import KINDS
from meshctl.config.loader import load

# (module under tests/config, its list of cases, the kind its snippets are specs of)
SOURCES = [
    ("test_gateway", "CASES", "Gateway"),
    ("test_virtualservice", "CASES", "VirtualService"),
    ("test_destinationrule", "CASES", "DestinationRule"),
    ("test_sidecar", "CASES", "Sidecar"),
    ("test_serviceentry", "SERVICE_ENTRY_CASES", "ServiceEntry"),
    ("test_serviceentry", "WORKLOAD_ENTRY_CASES", "WorkloadEntry"),
    ("test_security", "PEER_AUTHENTICATION_CASES", "PeerAuthentication"),
    ("test_security", "AUTHORIZATION_POLICY_CASES", "AuthorizationPolicy"),
    ("test_security", "REQUEST_AUTHENTICATION_CASES", "RequestAuthentication"),
]


def _cases() -> list[Any]:
    found = []
    for module, name, kind in SOURCES:
        for case in getattr(importlib.import_module(f"config.{module}"), name):
            found.append(pytest.param(kind, case[1], id=f"{kind}-{case[0]}"))
    return found


@pytest.fixture(scope="module")
def webhooks() -> Iterator[tuple[int, bytes]]:
    with running_webhooks() as running:
        yield running


@pytest.fixture(scope="module")
def client(webhooks: tuple[int, bytes]) -> Iterator[Client]:
    client = Client(*webhooks)
    yield client
    client.close()


def without_location(path: Path, lines: list[str]) -> list[str]:
    """Problem lines about `path`, each without its `PATH:LINE: `."""
    prefix = f"{path}:"
    return [line[len(prefix):].split(": ", 1)[1] for line in lines if line.startswith(prefix)]


def validate_lines(path: Path) -> list[str]:
    """The problems `meshctl validate -f PATH` prints (the loader's, as its `load` reports them;
    test_validate_prints_the_same_lines holds the command to that)."""
    return without_location(path, [str(problem) for problem in load([str(path)]).problems])


def test_validate_prints_the_same_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from config.conftest import document

    path = tmp_path / "case.yaml"
    path.write_text(document("Gateway", "servers:\n- port: {number: 80, protocol: SPDY}\n  hosts: ['*']\n"))
    code, _, err = run_cli(capsys, "validate", "-f", str(path))
    assert code == 65
    assert without_location(path, err.splitlines()) == validate_lines(path) != []


@pytest.mark.parametrize(("kind", "spec"), _cases())
def test_each_malformed_object_is_refused_with_validates_message(
        kind: str, spec: str, client: Client, tmp_path: Path) -> None:
    from config.conftest import document

    text = document(kind, spec)
    path = tmp_path / "case.yaml"
    path.write_text(text)
    expected = validate_lines(path)
    assert expected
    response = client.review("/validate", admission_review(yaml.safe_load(text)))["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == "\n".join(expected)


VALID = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
         "metadata": {"name": "public", "namespace": "edge"},
         "spec": {"selector": {"istio": "ingressgateway"},
                  "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}


def test_a_valid_object_is_allowed(client: Client) -> None:
    assert client.review("/validate", admission_review(VALID, namespace="edge"))["response"] == {
        "uid": "7b2e-01", "allowed": True}


def test_dry_run_is_answered_as_the_real_request(client: Client) -> None:
    broken = {**VALID, "spec": {"selector": {"istio": "ingressgateway"}}}
    real = client.review("/validate", admission_review(broken, namespace="edge"))["response"]
    dry = client.review("/validate", admission_review(broken, namespace="edge", dry_run=True))["response"]
    assert real == dry
    assert dry["status"]["message"] == "Gateway edge/public: spec.servers: required field is missing"


def test_update_is_validated_delete_is_not(client: Client) -> None:
    broken = {**VALID, "spec": {}}
    assert client.review("/validate", admission_review(broken, operation="UPDATE"))["response"]["allowed"] is False
    assert client.review("/validate", admission_review(broken, operation="DELETE"))["response"]["allowed"] is True


def test_other_groups_and_unread_istio_kinds_are_allowed(client: Client) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": 1}}
    envoy_filter = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
                    "metadata": {"name": "f"}, "spec": {"anything": True}}
    for obj in (config_map, envoy_filter):
        assert client.review("/validate", admission_review(obj))["response"]["allowed"] is True
    assert ("networking.istio.io", "EnvoyFilter") not in KINDS  # a kind meshctl does not read


def test_an_unknown_istio_kind_is_refused(client: Client) -> None:
    typo = {**VALID, "kind": "Gatewy"}
    response = client.review("/validate", admission_review(typo))["response"]
    assert response["allowed"] is False
    assert "Gatewy" in response["status"]["message"]


def test_unknown_top_level_fields_are_refused(client: Client) -> None:
    extra = {**VALID, "specs": {}}
    response = client.review("/validate", admission_review(extra, namespace="edge"))["response"]
    assert response["status"]["message"] == "Gateway edge/public: specs: unknown field 'specs'"


def test_the_always_reject_annotation_is_refused(client: Client) -> None:
    """What istiod's readiness probe of its own webhook sends (a dry-run Gateway)."""
    probe = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
             "metadata": {"name": "invalid-gateway", "namespace": "istio-system",
                          "annotations": {"internal.istio.io/webhook-always-reject": "true"}}, "spec": {}}
    response = client.review("/validate", admission_review(probe, namespace="istio-system", dry_run=True))["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == '"internal.istio.io/webhook-always-reject" annotation found, rejecting'
