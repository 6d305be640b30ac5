"""The webhook configurations that make the API server call serve, as Istio's charts lay them
out (kubernetes-and-capture §3.2, §4.2): the same names, selectors and rules, so that
namespaces labelled for Istio (`istio-injection=enabled`, `istio.io/rev=REV`) and pods
labelled `sidecar.istio.io/inject=true` are injected exactly as Istio would inject them.

Selection happens in the API server, by these selectors: `istio-injection` wins over
`istio.io/rev`, `istio-injection=disabled` matches nothing, and a pod's
`sidecar.istio.io/inject=false` label opts it out everywhere. Only the default revision owns
the `istio-injection` webhooks and the catch-all validator.

`kept` is what a running control plane makes of them, as istiod's webhook controllers do
(meshctl.kube.webhookpatch applies it): the configurations labelled with its revision get its
CA bundle (in a MutatingWebhookConfiguration only the webhooks named `*sidecar-injector.istio.io`,
in a ValidatingWebhookConfiguration every webhook), and a validator's failurePolicy becomes
`Fail` once the control plane has seen the API server reach its webhook.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from meshctl.model.injection import INJECT_LABEL, INJECTION_LABEL, REVISION_LABEL

__all__ = [
    "INJECTOR_WEBHOOKS",
    "MUTATING",
    "SERVICE_PORT",
    "VALIDATED_GROUPS",
    "VALIDATING",
    "kept",
    "mutating_webhook_configuration",
    "needs_fail_closed",
    "validating_webhook_configurations",
    "webhook_configurations",
]

VALIDATED_GROUPS = ("security.istio.io", "networking.istio.io", "telemetry.istio.io", "extensions.istio.io")
SERVICE_PORT = 443
MUTATING, VALIDATING = "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"
INJECTOR_WEBHOOKS = "sidecar-injector.istio.io"
"""The name suffix of the injection webhooks whose caBundle istiod keeps (in any
MutatingWebhookConfiguration of its revision, other webhooks left alone)."""


def _expression(key: str, operator: str, *values: str) -> dict[str, Any]:
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        expression["values"] = list(values)
    return expression


def _client(service: str, namespace: str, path: str, ca_bundle: bytes) -> dict[str, Any]:
    config: dict[str, Any] = {"service": {"name": service, "namespace": namespace, "path": path, "port": SERVICE_PORT}}
    if ca_bundle:
        config["caBundle"] = base64.b64encode(ca_bundle).decode()
    return config


def _service(revision: str) -> str:
    return f"istiod-{revision}" if revision else "istiod"


def mutating_webhook_configuration(namespace: str, revision: str, ca_bundle: bytes) -> dict[str, Any]:
    """`istio-sidecar-injector[-REV][-NS]`: pods created in selected namespaces, or labelled
    for injection, go to `/inject`."""
    rev = revision or "default"
    name = "istio-sidecar-injector" + (f"-{revision}" if revision else "")
    if namespace != "istio-system":
        name += f"-{namespace}"
    not_disabled = _expression(INJECT_LABEL, "NotIn", "false")
    selectors = [
        ("rev.namespace.sidecar-injector.istio.io",
         [_expression(REVISION_LABEL, "In", rev), _expression(INJECTION_LABEL, "DoesNotExist")], [not_disabled]),
        ("rev.object.sidecar-injector.istio.io",
         [_expression(REVISION_LABEL, "DoesNotExist"), _expression(INJECTION_LABEL, "DoesNotExist")],
         [not_disabled, _expression(REVISION_LABEL, "In", rev)]),
    ]
    if not revision:
        selectors += [
            ("namespace.sidecar-injector.istio.io", [_expression(INJECTION_LABEL, "In", "enabled")], [not_disabled]),
            ("object.sidecar-injector.istio.io",
             [_expression(INJECTION_LABEL, "DoesNotExist"), _expression(REVISION_LABEL, "DoesNotExist")],
             [_expression(INJECT_LABEL, "In", "true"), _expression(REVISION_LABEL, "DoesNotExist")]),
        ]
    client = _client(_service(revision), namespace, "/inject", ca_bundle)
    webhooks = [{
        "name": webhook,
        "clientConfig": client,
        "sideEffects": "None",
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "failurePolicy": "Fail",
        "reinvocationPolicy": "Never",
        "admissionReviewVersions": ["v1"],
        "namespaceSelector": {"matchExpressions": namespace_selector},
        "objectSelector": {"matchExpressions": object_selector},
    } for webhook, namespace_selector, object_selector in selectors]
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name, "labels": {"app": "sidecar-injector", REVISION_LABEL: rev}},
            "webhooks": webhooks}


def validating_webhook_configurations(namespace: str, revision: str, ca_bundle: bytes) -> list[dict[str, Any]]:
    """`istio-validator[-REV]-NS` for objects labelled with the revision, and, for the default
    revision, `istiod-default-validator` for every Istio object. `failurePolicy` is `Fail`
    with a CA bundle (serve answers, so refusing what cannot be checked is safe), otherwise
    `Ignore`, as Istio installs it before its CA bundle is known."""
    rev = revision or "default"

    def webhook(name: str, object_selector: dict[str, Any] | None) -> dict[str, Any]:
        hook: dict[str, Any] = {
            "name": name,
            "clientConfig": _client(_service(revision), namespace, "/validate", ca_bundle),
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": list(VALIDATED_GROUPS),
                       "apiVersions": ["*"], "resources": ["*"]}],
            "failurePolicy": "Fail" if ca_bundle else "Ignore",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }
        if object_selector is not None:
            hook["objectSelector"] = object_selector
        return hook

    def configuration(name: str, hook: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": name, "labels": {"app": "istiod", REVISION_LABEL: rev}}, "webhooks": [hook]}

    revisioned = configuration(f"istio-validator{'-' + revision if revision else ''}-{namespace}",
                               webhook("rev.validation.istio.io",
                                       {"matchExpressions": [_expression(REVISION_LABEL, "In", rev)]}))
    if revision:
        return [revisioned]
    return [revisioned, configuration("istiod-default-validator", webhook("validation.istio.io", None))]


def webhook_configurations(namespace: str = "istio-system", revision: str = "",
                           ca_bundle: bytes = b"") -> list[dict[str, Any]]:
    """Every webhook configuration of one control plane, for `meshctl install`."""
    return [mutating_webhook_configuration(namespace, revision, ca_bundle),
            *validating_webhook_configurations(namespace, revision, ca_bundle)]


def kept(config: Mapping[str, Any], revision: str, ca_bundle: bytes, *, fail_closed: bool) -> dict[str, Any] | None:
    """`config` (a webhook configuration as the API server holds it) as the control plane of
    `revision` keeps it: `ca_bundle` in its webhooks' clientConfig and, with `fail_closed`, a
    validator's failurePolicy `Fail`; None when it is so already, or is not that control plane's
    (another revision's label, or none)."""
    if not _ours(config, revision):
        return None
    validating = config.get("kind") == VALIDATING
    encoded = base64.b64encode(ca_bundle).decode()
    changed = False
    webhooks = []
    for hook in config.get("webhooks") or ():
        hook = dict(hook)
        if validating or str(hook.get("name") or "").endswith(INJECTOR_WEBHOOKS):
            client = dict(hook.get("clientConfig") or {})
            if _bundle_of(client) != ca_bundle:
                client["caBundle"] = encoded
                hook["clientConfig"] = client
                changed = True
            if validating and fail_closed and hook.get("failurePolicy", "Fail") != "Fail":
                hook["failurePolicy"] = "Fail"
                changed = True
        webhooks.append(hook)
    return {**config, "webhooks": webhooks} if changed else None


def needs_fail_closed(config: Mapping[str, Any], revision: str) -> bool:
    """Whether `config` is a validator of `revision` with a webhook that does not fail closed
    (Istio installs them with `Ignore`, for istiod to switch once its webhook answers)."""
    return config.get("kind") == VALIDATING and _ours(config, revision) and any(
        hook.get("failurePolicy", "Fail") != "Fail" for hook in config.get("webhooks") or ())


def _ours(config: Mapping[str, Any], revision: str) -> bool:
    labels = (config.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(REVISION_LABEL) == (revision or "default"))


def _bundle_of(client: Mapping[str, Any]) -> bytes | None:
    try:
        return base64.b64decode(str(client.get("caBundle") or ""), validate=True)
    except ValueError:
        return None
