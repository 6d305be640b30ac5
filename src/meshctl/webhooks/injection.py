"""`/inject`: the sidecar injector, answering an AdmissionReview of a pod with a JSON patch.

The API server only calls it for pods the MutatingWebhookConfiguration's selectors pick (see
configurations.py); the pod itself may still opt out (`skip_reason`), which is answered
`allowed: true` without a patch. Annotations Istio would refuse give `allowed: false` and
the messages, so the pod is not created with a sidecar that captures the wrong traffic.

The path may carry settings, as istiod's does: `/inject/cluster/ID/net/NETWORK` (any further
`KEY/VALUE` pairs are accepted and ignored), `--slash--` standing for `/` in a value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from meshctl.inject.pod import InjectionError, inject_template, owner_of_pod, skip_reason
from meshctl.inject.settings import InjectSettings
from meshctl.webhooks.admission import Answer, Request
from meshctl.webhooks.jsonpatch import create_patch

__all__ = ["review_pod", "settings_for_path"]


def settings_for_path(settings: InjectSettings, path: str) -> InjectSettings:
    """The settings with the cluster and network a `/inject/cluster/ID/net/NETWORK` path names."""
    parts = [part for part in path.split("/") if part][1:]
    values = {parts[index]: parts[index + 1].replace("--slash--", "/") for index in range(0, len(parts) - 1, 2)}
    changes: dict[str, Any] = {}
    if values.get("cluster"):
        changes["cluster_id"] = values["cluster"]
    if values.get("net"):
        changes["network"] = values["net"]
    return dataclasses.replace(settings, **changes) if changes else settings


def review_pod(request: Request, settings: InjectSettings) -> Answer:
    """The injector's answer for one pod."""
    pod = request.object
    metadata = dict(pod.get("metadata") or {})
    metadata.pop("managedFields", None)
    namespace = str(metadata.get("namespace") or request.namespace)
    if request.kind not in ("", "Pod") or request.group:
        return Answer(True, f"not a pod ({request.kind}): nothing to inject")
    template = {"metadata": metadata, "spec": pod.get("spec") or {}}
    if skip_reason(namespace, template):
        return Answer(True)
    try:
        injected = inject_template(template, namespace, owner_of_pod(metadata), settings)
    except InjectionError as exc:
        return Answer(False, str(exc))
    result = {**pod, "metadata": injected["metadata"], "spec": injected["spec"]}
    if "managedFields" in (pod.get("metadata") or {}):
        result["metadata"] = {**injected["metadata"], "managedFields": pod["metadata"]["managedFields"]}
    return Answer(True, patch=create_patch(pod, result))
