"""The webhook configurations: Istio's names, rules and selectors, evaluated here the way the API
server evaluates them (label selectors with matchExpressions) to show which pods each revision
injects; the JSON patch writer checked against an independent RFC 6902 implementation."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import pytest

from meshctl.webhooks.configurations import (
    kept,
    mutating_webhook_configuration,
    needs_fail_closed,
    validating_webhook_configurations,
    webhook_configurations,
)
from meshctl.webhooks.jsonpatch import create_patch


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes' LabelSelector semantics for matchExpressions (what the API server applies)."""
    for expression in selector.get("matchExpressions", ()):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", ())
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def injecting_webhooks(configuration: dict[str, Any], namespace: dict[str, str], pod: dict[str, str]) -> list[str]:
    return [hook["name"] for hook in configuration["webhooks"]
            if matches(hook["namespaceSelector"], namespace) and matches(hook["objectSelector"], pod)]


DEFAULT = mutating_webhook_configuration("istio-system", "", b"")
CANARY = mutating_webhook_configuration("istio-system", "canary", b"")

# (namespace labels, pod labels, default's webhooks, canary's webhooks)
SELECTION = [
    ({"istio-injection": "enabled"}, {}, ["namespace.sidecar-injector.istio.io"], []),
    ({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"}, [], []),
    ({"istio-injection": "enabled", "istio.io/rev": "canary"}, {}, ["namespace.sidecar-injector.istio.io"], []),
    ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"}, [], []),
    ({"istio.io/rev": "canary"}, {}, [], ["rev.namespace.sidecar-injector.istio.io"]),
    ({"istio.io/rev": "default"}, {}, ["rev.namespace.sidecar-injector.istio.io"], []),
    ({"istio.io/rev": "canary"}, {"sidecar.istio.io/inject": "false"}, [], []),
    ({}, {"sidecar.istio.io/inject": "true"}, ["object.sidecar-injector.istio.io"], []),
    ({}, {"istio.io/rev": "canary"}, [], ["rev.object.sidecar-injector.istio.io"]),
    ({}, {"sidecar.istio.io/inject": "true", "istio.io/rev": "canary"}, [], ["rev.object.sidecar-injector.istio.io"]),
    ({}, {}, [], []),
    ({"istio.io/rev": "canary"}, {"istio.io/rev": "default"}, [], ["rev.namespace.sidecar-injector.istio.io"]),
]


@pytest.mark.parametrize(("namespace", "pod", "default", "canary"), SELECTION)
def test_istios_precedence_between_namespace_and_pod_labels(namespace: dict[str, str], pod: dict[str, str],
                                                             default: list[str], canary: list[str]) -> None:
    assert injecting_webhooks(DEFAULT, namespace, pod) == default
    assert injecting_webhooks(CANARY, namespace, pod) == canary


def test_mutating_configuration_shape() -> None:
    configuration = mutating_webhook_configuration("mesh", "canary", b"ROOT PEM")
    assert configuration["metadata"] == {"name": "istio-sidecar-injector-canary-mesh",
                                         "labels": {"app": "sidecar-injector", "istio.io/rev": "canary"}}
    (hook, *_) = configuration["webhooks"]
    assert hook["clientConfig"] == {"service": {"name": "istiod-canary", "namespace": "mesh", "path": "/inject",
                                                "port": 443}, "caBundle": base64.b64encode(b"ROOT PEM").decode()}
    assert hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                              "resources": ["pods"]}]
    assert (hook["failurePolicy"], hook["sideEffects"], hook["reinvocationPolicy"]) == ("Fail", "None", "Never")
    assert DEFAULT["metadata"]["name"] == "istio-sidecar-injector"


def test_validating_configurations() -> None:
    revisioned, catch_all = validating_webhook_configurations("istio-system", "", b"PEM")
    assert revisioned["metadata"]["name"] == "istio-validator-istio-system"
    assert revisioned["webhooks"][0]["objectSelector"] == {
        "matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": ["default"]}]}
    assert catch_all["metadata"]["name"] == "istiod-default-validator"
    hook = catch_all["webhooks"][0]
    assert "objectSelector" not in hook
    assert hook["clientConfig"]["service"]["path"] == "/validate"
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert set(hook["rules"][0]["apiGroups"]) == {"networking.istio.io", "security.istio.io", "telemetry.istio.io",
                                                  "extensions.istio.io"}
    assert hook["failurePolicy"] == "Fail"
    (only,) = validating_webhook_configurations("istio-system", "canary", b"")
    assert only["metadata"]["name"] == "istio-validator-canary-istio-system"
    assert only["webhooks"][0]["failurePolicy"] == "Ignore"  # no CA bundle yet: as Istio installs it
    assert [c["kind"] for c in webhook_configurations()] == [
        "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


PATCH_CASES = [
    ({"a": 1}, {"a": 1}),
    ({"a": {"b/c": 1, "d~e": [1, 2, 3]}}, {"a": {"b/c": 2, "d~e": [1, 3]}, "new": None}),
    ({"list": [{"n": 1}, {"n": 2}]}, {"list": [{"n": 0}, {"n": 1}, {"n": 2}]}),
    ({"x": True}, {"x": 1}),
    ({"x": [1, 2]}, {"x": {"0": 1}}),
    ({"metadata": {}}, {"metadata": {"annotations": {"sidecar.istio.io/status": "{}"}}}),
    ({"spec": {"containers": [1, 2, 3, 4]}}, {"spec": {"containers": []}}),
]


@pytest.mark.parametrize(("before", "after"), PATCH_CASES)
def test_patch_turns_before_into_after(before: Any, after: Any) -> None:
    patch = create_patch(before, after)
    result = jsonpatch.apply_patch(before, patch)
    assert result == after
    assert [type(v) for v in _leaves(result)] == [type(v) for v in _leaves(after)]
    assert (patch == []) == (json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for key in sorted(value) for leaf in _leaves(value[key])]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def test_patch_paths_escape_slashes_and_tildes() -> None:
    assert create_patch({}, {"a/b~c": 1}) == [{"op": "add", "path": "/a~1b~0c", "value": 1}]


ROOT = b"-----BEGIN CERTIFICATE-----\nserve's root\n-----END CERTIFICATE-----\n"


def test_kept_puts_the_bundle_in_the_injection_webhooks_of_its_revision_only() -> None:
    config = mutating_webhook_configuration("istio-system", "", b"")
    config["webhooks"].append({"name": "someone-else.example.com", "clientConfig": {"caBundle": "b3RoZXI="}})
    patched = kept(config, "", ROOT, fail_closed=True)
    assert patched is not None
    bundles = {hook["name"]: base64.b64decode(hook["clientConfig"].get("caBundle", "")) for hook in patched["webhooks"]}
    assert bundles.pop("someone-else.example.com") == b"other"  # not an injector: left alone
    assert set(bundles.values()) == {ROOT} and len(bundles) == 4
    assert {hook["failurePolicy"] for hook in patched["webhooks"][:4]} == {"Fail"}  # as installed: injection fails closed
    assert kept(patched, "", ROOT, fail_closed=True) is None  # nothing differs: nothing to write
    assert kept(config, "canary", ROOT, fail_closed=True) is None  # another revision's
    unlabelled = {**config, "metadata": {"name": "istio-sidecar-injector"}}
    assert kept(unlabelled, "", ROOT, fail_closed=True) is None  # no revision label: not Istio's


def test_kept_fails_validators_closed_only_when_told() -> None:
    revisioned, default = validating_webhook_configurations("istio-system", "", b"")
    assert needs_fail_closed(revisioned, "") and needs_fail_closed(default, "")
    assert not needs_fail_closed(revisioned, "canary")
    opened = kept(revisioned, "", ROOT, fail_closed=False)
    assert opened is not None and opened["webhooks"][0]["failurePolicy"] == "Ignore"
    assert base64.b64decode(opened["webhooks"][0]["clientConfig"]["caBundle"]) == ROOT
    assert kept(opened, "", ROOT, fail_closed=False) is None
    closed = kept(opened, "", ROOT, fail_closed=True)
    assert closed is not None and closed["webhooks"][0]["failurePolicy"] == "Fail" and not needs_fail_closed(closed, "")
    defaulted = {**closed, "webhooks": [{k: v for k, v in closed["webhooks"][0].items() if k != "failurePolicy"}]}
    assert not needs_fail_closed(defaulted, "") and kept(defaulted, "", ROOT, fail_closed=True) is None  # unset is Fail
    foreign = kept(closed, "", b"another root", fail_closed=True)
    assert foreign is not None and base64.b64decode(foreign["webhooks"][0]["clientConfig"]["caBundle"]) == b"another root"
