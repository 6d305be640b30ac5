"""The emulator's own fixes, checked with the official client over real HTTP (ecosystem.md §1.3)."""

from __future__ import annotations

import time

import pytest
from emulator import (
    BackgroundEmulator,
    MeshEmulator,
    field_selector_matches,
    label_selector_matches,
)
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from seeds import add_pod


@pytest.fixture
def core(api_server: BackgroundEmulator) -> client.CoreV1Api:
    configuration = client.Configuration()
    configuration.host = api_server.url
    return client.CoreV1Api(client.ApiClient(configuration))


def test_discovery_answers_the_trailing_slash_paths_the_client_requests(
    core: client.CoreV1Api,
) -> None:
    api = core.api_client
    assert client.VersionApi(api).get_code().git_version
    groups = {group.name for group in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "authentication.k8s.io"} <= groups
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]


def test_create_answers_201_with_the_metadata_the_server_owns(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_service("shop", {"metadata": {"name": "cart"}, "spec": {}})
    second = core.create_namespaced_service("shop", {"metadata": {"name": "till"}, "spec": {}})
    assert first.metadata.namespace == "shop"
    assert first.metadata.uid and first.metadata.uid != second.metadata.uid
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    patched = core.patch_namespaced_service("cart", "shop", {"metadata": {"labels": {"a": "b"}}})
    assert int(patched.metadata.resource_version) > int(second.metadata.resource_version)
    listing = core.list_namespaced_service("shop")
    assert listing.metadata.resource_version == patched.metadata.resource_version


def test_list_filters_by_label_and_field_selectors(
    emulator: MeshEmulator, core: client.CoreV1Api
) -> None:
    add_pod(emulator, "a", labels={"app": "web", "tier": "front"})
    add_pod(emulator, "b", labels={"app": "web"}, phase="Pending")
    add_pod(emulator, "c", labels={"app": "db"})

    def names(**selectors: str) -> list[str]:
        return sorted(
            p.metadata.name for p in core.list_namespaced_pod("default", **selectors).items
        )

    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app in (web,db),!tier") == ["b", "c"]
    assert names(label_selector="app!=web") == ["c"]
    assert names(label_selector="tier") == ["a"]
    assert names(label_selector="app notin (db)", field_selector="status.phase=Running") == ["a"]
    assert names(field_selector="metadata.name!=a,status.phase=Running") == ["c"]


def test_watch_honours_the_selector_and_timeout_seconds(
    emulator: MeshEmulator, core: client.CoreV1Api
) -> None:
    add_pod(emulator, "a", labels={"app": "web"})
    add_pod(emulator, "b", labels={"app": "db"})
    started = time.monotonic()
    events = list(
        watch.Watch().stream(
            core.list_namespaced_pod,
            "default",
            label_selector="app=web",
            timeout_seconds=1,
            _request_timeout=10,
        )
    )
    elapsed = time.monotonic() - started
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a")]
    assert 0.9 < elapsed < 5


def test_create_only_resources_reach_the_reaction_every_time(
    emulator: MeshEmulator, core: client.CoreV1Api
) -> None:
    emulator["post /apis/authentication.k8s.io/v1/tokenreviews"] << (
        lambda request: {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": request.data["spec"],
            "status": {"authenticated": request.data["spec"]["token"] == "good"},
        }
    )
    authn = client.AuthenticationV1Api(core.api_client)
    for token, expected in (("good", True), ("bad", False), ("good", True)):
        review = authn.create_token_review({"spec": {"token": token}})
        assert review.status.authenticated is expected


def test_create_only_resource_without_a_reaction_says_how_to_add_one(
    core: client.CoreV1Api,
) -> None:
    authn = client.AuthenticationV1Api(core.api_client)
    with pytest.raises(ApiException) as caught:
        authn.create_token_review({"spec": {"token": "t"}})
    assert caught.value.status == 501
    assert "reaction" in caught.value.body


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a in (1, 2)", {"a": "2"}, True),
        ("a notin (1,2),b", {"a": "3", "b": ""}, True),
        ("!a", {"a": "1"}, False),
        ("app.kubernetes.io/name=x", {"app.kubernetes.io/name": "x"}, True),
    ],
)
def test_label_selector_grammar(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert label_selector_matches(selector, labels) is expected


def test_field_selector_reads_dotted_paths() -> None:
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Running"}}
    assert field_selector_matches("status.phase=Running,metadata.name==p", pod)
    assert not field_selector_matches("spec.nodeName=n1", pod)
    assert field_selector_matches("spec.nodeName!=n1", pod)
