"""The emulator's own fixes, checked with the official client over real HTTP (ecosystem.md §1.3)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from apiselectors import field_selector_matches, label_selector_matches
from emulator import BackgroundEmulator, MeshEmulator
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from seeds import add_pod

from meshctl.loopback import wait_until


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
    authz = client.AuthorizationV1Api(core.api_client)
    with pytest.raises(ApiException) as caught:
        authz.create_subject_access_review({"spec": {"user": "u", "resourceAttributes": {"verb": "get"}}})
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


# -- what a real API server does that stock kmock did not: revisions, watches, CAS, CRDs, tokens --


def _service(name: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"ports": [{"port": 80}]}}


def _events(core: client.CoreV1Api, **options: object) -> list[tuple[str, str]]:
    stream = watch.Watch().stream(core.list_namespaced_service, "shop", timeout_seconds=1, _request_timeout=10,
                                  **options)
    return [(event["type"], event["object"].metadata.name) for event in stream]


def test_every_write_takes_the_next_revision_and_a_list_says_the_current_one(core: client.CoreV1Api) -> None:
    cart = core.create_namespaced_service("shop", _service("cart"))
    till = core.create_namespaced_service("shop", _service("till"))
    deleted = client.ApiClient().sanitize_for_serialization(
        core.delete_namespaced_service("cart", "shop"))
    revisions = [int(cart.metadata.resource_version), int(till.metadata.resource_version),
                 int(deleted["metadata"]["resourceVersion"])]
    assert revisions == sorted(set(revisions))
    assert core.list_namespaced_service("shop").metadata.resource_version == str(revisions[-1])


def test_a_watch_from_a_revision_replays_exactly_what_came_after_it(core: client.CoreV1Api) -> None:
    core.create_namespaced_service("shop", _service("cart"))
    since = core.list_namespaced_service("shop").metadata.resource_version
    core.create_namespaced_service("shop", _service("till"))
    core.patch_namespaced_service("cart", "shop", {"metadata": {"labels": {"v": "2"}}})
    core.delete_namespaced_service("till", "shop")
    assert _events(core, resource_version=since) == [("ADDED", "till"), ("MODIFIED", "cart"), ("DELETED", "till")]
    assert _events(core) == [("ADDED", "cart")]


def test_a_watch_sees_objects_enter_and_leave_its_selector(core: client.CoreV1Api) -> None:
    core.create_namespaced_service("shop", _service("cart", {"tier": "front"}))
    since = core.list_namespaced_service("shop").metadata.resource_version
    core.patch_namespaced_service("cart", "shop", {"metadata": {"labels": {"tier": "back"}}})
    core.patch_namespaced_service("cart", "shop", {"metadata": {"labels": {"tier": "front"}}})
    assert _events(core, resource_version=since, label_selector="tier=front") == [("DELETED", "cart"), ("ADDED", "cart")]


def test_bookmarks_carry_the_current_revision(api_server: BackgroundEmulator) -> None:
    with BackgroundEmulator(bookmark_interval=0.2) as background:
        configuration = client.Configuration()
        configuration.host = background.url
        core = client.CoreV1Api(client.ApiClient(configuration))
        core.create_namespaced_service("shop", _service("cart"))
        latest = core.create_namespaced_config_map("other", {"metadata": {"name": "c"}}).metadata.resource_version
        stream = watch.Watch().stream(core.list_namespaced_service, "shop", resource_version="1",
                                      allow_watch_bookmarks=True, timeout_seconds=1, _request_timeout=10)
        events = list(stream)
    bookmarks = [e["raw_object"]["metadata"]["resourceVersion"] for e in events if e["type"] == "BOOKMARK"]
    assert [e["type"] for e in events if e["type"] != "BOOKMARK"] == []  # nothing in "shop" after revision 1
    assert len(bookmarks) >= 2 and set(bookmarks) == {latest}


def test_a_compacted_revision_is_410_gone(emulator: MeshEmulator, core: client.CoreV1Api) -> None:
    core.create_namespaced_service("shop", _service("cart"))
    since = core.list_namespaced_service("shop").metadata.resource_version
    core.create_namespaced_service("shop", _service("till"))
    emulator.cut_watches(gone=True)
    with pytest.raises(ApiException) as caught:
        _events(core, resource_version=since)
    assert caught.value.status == 410
    latest = core.list_namespaced_service("shop").metadata.resource_version
    assert _events(core, resource_version=latest) == []


def test_cutting_watches_ends_them_with_410_when_their_revision_is_gone(
    emulator: MeshEmulator, core: client.CoreV1Api
) -> None:
    core.create_namespaced_service("shop", _service("cart"))
    seen: list[str] = []
    failure: list[int] = []

    def consume() -> None:
        try:
            for event in watch.Watch().stream(core.list_namespaced_service, "shop", timeout_seconds=20,
                                              _request_timeout=30):
                seen.append(event["type"])
        except ApiException as exc:
            failure.append(exc.status)

    worker = threading.Thread(target=consume)
    worker.start()
    wait_until(lambda: seen == ["ADDED"], 5, what="the first event")
    started = time.monotonic()

    def change_then_cut() -> None:
        emulator.store.update(("", "services"), ("shop", "cart"), lambda obj: obj)
        emulator.cut_watches(gone=True)

    emulator._on_loop(change_then_cut)
    worker.join(10)
    assert failure == [410] and seen == ["ADDED"]  # the change was not delivered: a relist must find it
    assert time.monotonic() - started < 5


def test_writes_carrying_a_stale_revision_conflict(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_service("shop", _service("cart"))
    stale = created.metadata.resource_version
    body = _service("cart", {"v": "2"})
    body["metadata"]["resourceVersion"] = stale  # type: ignore[index]
    replaced = core.replace_namespaced_service("cart", "shop", body)
    assert replaced.metadata.labels == {"v": "2"}
    for attempt in (
        lambda: core.replace_namespaced_service("cart", "shop", {"metadata": {"name": "cart", "resourceVersion": stale},
                                                                  "spec": {"ports": [{"port": 81}]}}),
        lambda: core.patch_namespaced_service("cart", "shop", {"metadata": {"resourceVersion": stale}}),
    ):
        with pytest.raises(ApiException) as caught:
            attempt()
        assert caught.value.status == 409
    assert core.read_namespaced_service("cart", "shop").spec.ports[0].port == 80


def test_one_storage_serves_every_version_of_a_kind(core: client.CoreV1Api) -> None:
    custom = client.CustomObjectsApi(core.api_client)
    custom.create_namespaced_custom_object("networking.istio.io", "v1", "shop", "virtualservices", {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "cart"},
        "spec": {"hosts": ["cart"]}})
    seen = custom.list_namespaced_custom_object("networking.istio.io", "v1beta1", "shop", "virtualservices")
    assert [(i["apiVersion"], i["metadata"]["name"]) for i in seen["items"]] == [("networking.istio.io/v1beta1", "cart")]
    with pytest.raises(ApiException) as caught:
        custom.list_cluster_custom_object("networking.istio.io", "v1", "telemetries")
    assert caught.value.status == 404


def _crd(schema: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "kind": "Widget", "singular": "widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}}]},
    }


_WIDGET_SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
    "size": {"type": "integer", "minimum": 1}, "color": {"type": "string", "enum": ["red", "blue"]}}}}}


def test_a_crd_serves_its_kind_and_validates_objects_by_its_schema(core: client.CoreV1Api) -> None:
    extensions = client.ApiextensionsV1Api(core.api_client)
    custom = client.CustomObjectsApi(core.api_client)
    crd = extensions.create_custom_resource_definition(_crd(_WIDGET_SCHEMA))
    assert {c.type for c in crd.status.conditions if c.status == "True"} == {"Established", "NamesAccepted"}

    def widget(spec: dict[str, object], **options: str) -> dict[str, object]:
        return custom.create_namespaced_custom_object("example.com", "v1", "shop", "widgets", {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": f"w{len(spec)}{len(options)}"},
            "spec": spec}, **options)

    assert widget({"size": 2, "shape": "round"})["spec"] == {"size": 2}  # unknown fields pruned
    for spec, options, expected in (
        ({"size": "2"}, {}, "spec.size: must be of type integer"),
        ({"color": "green"}, {}, "spec.size: Required value"),
        ({"size": 1, "shape": "round"}, {"field_validation": "Strict"}, 'unknown field "spec.shape"'),
    ):
        with pytest.raises(ApiException) as caught:
            widget(spec, **options)
        assert caught.value.status == 422 and expected in json.loads(caught.value.body)["message"]
    extensions.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(ApiException) as caught:
        custom.list_cluster_custom_object("example.com", "v1", "widgets")
    assert caught.value.status == 404


def test_a_crd_without_a_structural_schema_is_refused(core: client.CoreV1Api) -> None:
    extensions = client.ApiextensionsV1Api(core.api_client)
    untyped = {"type": "object", "properties": {"spec": {"properties": {"size": {"type": "integer"}}}}}
    with pytest.raises(ApiException) as caught:
        extensions.create_custom_resource_definition(_crd(untyped))
    assert caught.value.status == 422
    assert "openAPIV3Schema.properties[spec].type: Required value" in caught.value.body


def test_tokens_are_issued_for_a_service_account_and_reviewed_for_their_audience(core: client.CoreV1Api) -> None:
    core.create_namespaced_service_account("shop", {"metadata": {"name": "cart"}})
    authn = client.AuthenticationV1Api(core.api_client)
    token = core.create_namespaced_service_account_token(
        "cart", "shop", {"spec": {"audiences": ["istio-ca"], "expirationSeconds": 600}}).status.token

    def review(token: str, audience: str) -> client.V1TokenReviewStatus:
        return authn.create_token_review({"spec": {"token": token, "audiences": [audience]}}).status

    accepted = review(token, "istio-ca")
    assert accepted.authenticated and accepted.user.username == "system:serviceaccount:shop:cart"
    assert "system:serviceaccounts" in accepted.user.groups and accepted.audiences == ["istio-ca"]
    wrong_audience, unknown = review(token, "vault"), review("forged", "istio-ca")
    assert not wrong_audience.authenticated and "audiences" in wrong_audience.error
    assert not unknown.authenticated and unknown.error
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service_account_token("ghost", "shop", {"spec": {"audiences": ["istio-ca"]}})
    assert caught.value.status == 404
