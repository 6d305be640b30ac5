"""Injecting one pod (or pod template): Istio's pipeline, minus its Go templates.

1. Decide whether the pod is injected at all (`skip_reason`, Istio's `injectRequired`).
2. Refuse annotations the injector cannot use (`annotations.annotation_problems`).
3. Strip an earlier injection, as its `sidecar.istio.io/status` annotation lists it, so that
   injecting an injected pod gives the same pod again.
4. Render the sidecar for the pod's effective ProxyConfig, with the pod's own `istio-proxy` or
   `istio-init` container (if it has one) merged over the injected one, and put it in: istio-init after the
   pod's own init containers (they run before capture starts, as in Istio), istio-proxy last
   among the containers (first when the application must wait for it), or, as a native
   sidecar, right after istio-init.
5. Label and annotate the pod, the status annotation listing exactly what was injected.

Everything is a pure function of JSON-ready data; nothing here reads files or the network.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from meshctl.errors import MeshctlError
from meshctl.inject import annotations as ann
from meshctl.inject.proxyconfig import ProxyConfigError, effective
from meshctl.inject.settings import InjectSettings
from meshctl.inject.sidecar import INIT_NAME, PROXY_NAME, Owner, Sidecar, render

__all__ = [
    "IGNORED_NAMESPACES",
    "InjectionError",
    "inject_template",
    "merge_container",
    "owner_of_pod",
    "skip_reason",
    "status_annotation",
]

IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "local-path-storage"})
_CRONJOB_JOB = re.compile(r"^(.+)-\d{8,10}$")


class InjectionError(MeshctlError):
    """The pod cannot be injected; `problems` are Istio's messages, one per bad annotation."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def skip_reason(namespace: str, template: Mapping[str, Any]) -> str | None:
    """Why Istio's injector leaves this pod alone (its `injectRequired`), or None to inject.

    The pod's `sidecar.istio.io/inject` label wins over the annotation of the same name; only
    `true` and `false` count, anything else falls back to the default, which (the injection
    policy being `enabled`) is to inject.
    """
    spec = template.get("spec") or {}
    metadata = template.get("metadata") or {}
    if spec.get("hostNetwork"):
        return "has host networking enabled"
    if namespace in IGNORED_NAMESPACES:
        return f"is in the {namespace} namespace, which is never injected"
    labels = metadata.get("labels") or {}
    choice = labels.get(ann.INJECT, (metadata.get("annotations") or {}).get(ann.INJECT, ""))
    if choice == "false":
        return "has sidecar injection disabled"
    return None


def owner_of_pod(metadata: Mapping[str, Any]) -> Owner:
    """The workload a pod created by a controller belongs to, from its owner references, as
    Istio's GetDeployMetaFromPod works it out: a ReplicaSet named `NAME-<pod-template-hash>` is
    Deployment NAME, a Job named `NAME-<8 to 10 digits>` is CronJob NAME; a pod without a
    generated name is its own workload."""
    name = str(metadata.get("name") or "")
    owner = Owner("Pod", "v1", name)
    if not metadata.get("generateName"):
        return owner
    controller = next((ref for ref in metadata.get("ownerReferences") or () if ref.get("controller")), None)
    if not controller or not controller.get("name"):
        return owner
    kind, api_version, owner_name = str(controller.get("kind")), str(controller.get("apiVersion")), str(controller["name"])
    template_hash = (metadata.get("labels") or {}).get("pod-template-hash", "")
    if kind == "ReplicaSet" and template_hash and owner_name.endswith(f"-{template_hash}"):
        return Owner("Deployment", "apps/v1", owner_name[: -len(template_hash) - 1])
    cron = _CRONJOB_JOB.match(owner_name) if kind == "Job" else None
    if cron:
        return Owner("CronJob", "batch/v1", cron.group(1))
    return Owner(kind, api_version, owner_name)


def inject_template(template: Mapping[str, Any], namespace: str, owner: Owner,
                    settings: InjectSettings) -> dict[str, Any]:
    """The pod (`{metadata, spec}`) with its sidecar; the input is not modified. Raises
    InjectionError for annotations Istio would refuse."""
    metadata = copy.deepcopy(dict(template.get("metadata") or {}))
    spec = copy.deepcopy(dict(template.get("spec") or {}))
    annotations: dict[str, str] = dict(metadata.get("annotations") or {})
    problems = ann.annotation_problems(annotations)
    if problems:
        raise InjectionError(problems)
    injected_before = ann.STATUS in annotations
    _strip(spec, annotations)
    overrides = _overrides(spec, annotations, injected_before)
    try:
        proxy_config = effective(settings.mesh.default_config.fields, annotations.get(ann.PROXY_CONFIG))
    except ProxyConfigError as exc:  # the mesh's own default config; the annotation was checked
        raise InjectionError([("", str(exc))]) from None
    metadata["annotations"] = annotations
    sidecar = render(settings, metadata, spec, owner, namespace, proxy_config)
    for container in (*sidecar.init_containers, *sidecar.containers):
        for own in overrides.get(container["name"], ()):
            merge_container(container, own)
    _insert(spec, sidecar, proxy_config.hold_application)
    metadata["labels"] = {**(metadata.get("labels") or {}), **sidecar.labels}
    app = next((c.get("name") for c in spec.get("containers") or () if c.get("name") != PROXY_NAME), None)
    if app:
        annotations.setdefault(ann.DEFAULT_LOGS_CONTAINER, app)
        annotations.setdefault(ann.DEFAULT_CONTAINER, app)
    annotations[ann.REVISION] = settings.revision_name
    annotations[ann.STATUS] = status_annotation(sidecar, settings)
    return {**template, "metadata": metadata, "spec": spec}


def status_annotation(sidecar: Sidecar, settings: InjectSettings) -> str:
    """`sidecar.istio.io/status`: what was injected, keys in Istio's order, an empty list null."""
    init, containers, volumes = sidecar.names
    status = {"initContainers": init or None, "containers": containers or None, "volumes": volumes or None,
              "imagePullSecrets": None, "revision": settings.revision_name}
    return json.dumps(status, separators=(",", ":"))


def _strip(spec: dict[str, Any], annotations: dict[str, str]) -> None:
    """Remove what an earlier injection added, as its status annotation lists it (labels and
    annotations are set again the same way, so nothing is undone there)."""
    text = annotations.pop(ann.STATUS, None)
    if text is None:
        return
    try:
        status = json.loads(text)
        if not isinstance(status, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise InjectionError([(ann.STATUS, f"invalid value for annotation '{ann.STATUS}': {exc}; remove it "
                                           "to inject again")]) from None
    for field in ("initContainers", "containers", "volumes", "imagePullSecrets"):
        names = set(status.get(field) or ())
        if names and field in spec:
            kept = [item for item in spec[field] or () if item.get("name") not in names]
            if kept:
                spec[field] = kept
            else:
                del spec[field]


_TEMPLATE_CONTAINERS = frozenset({INIT_NAME, PROXY_NAME})
_MERGE_KEYS = {"env": "name", "volumeMounts": "mountPath", "ports": "containerPort"}


def _overrides(spec: dict[str, Any], annotations: dict[str, str], injected_before: bool) -> dict[str, list[Any]]:
    """The pod's own `istio-proxy`/`istio-init` containers, to be merged over the injected ones
    as Istio does (its image `auto` meaning the injected image): taken out of a pod seen for the
    first time and kept in `proxy.istio.io/overrides`, read back from there on re-injection."""
    found: list[dict[str, Any]] = []
    if injected_before:
        text = annotations.get(ann.OVERRIDES)
        if text:
            try:
                saved = json.loads(text)
                found = [*saved.get("containers", ()), *saved.get("initContainers", ())]
            except (ValueError, AttributeError, TypeError) as exc:
                raise InjectionError([(ann.OVERRIDES, f"invalid value for annotation '{ann.OVERRIDES}': {exc}")]
                                     ) from None
    else:
        saved = {}
        for field in ("containers", "initContainers"):
            own = [c for c in spec.get(field) or () if c.get("name") in _TEMPLATE_CONTAINERS]
            if own:
                saved[field] = own
                found += own
                spec[field] = [c for c in spec[field] if c.get("name") not in _TEMPLATE_CONTAINERS]
        if saved:
            annotations[ann.OVERRIDES] = json.dumps(saved, separators=(",", ":"))
    by_name: dict[str, list[Any]] = {}
    for container in found:
        if isinstance(container, dict):
            by_name.setdefault(str(container.get("name")), []).append(container)
    return by_name


def merge_container(injected: dict[str, Any], own: Mapping[str, Any]) -> None:
    """A pod's own container over the injected one, as a strategic merge patch: maps merge,
    env, mounts and ports merge by name, path and port, anything else the pod sets wins."""
    for key, value in own.items():
        current = injected.get(key)
        if key == "image" and value in ("", "auto"):
            continue
        if key in _MERGE_KEYS and isinstance(current, list) and isinstance(value, list):
            merge_key = _MERGE_KEYS[key]
            items = {item.get(merge_key): item for item in current}
            for item in value:
                items[item.get(merge_key)] = item
            injected[key] = list(items.values())
        elif isinstance(current, dict) and isinstance(value, dict):
            merge_container(current, value)
        else:
            injected[key] = copy.deepcopy(value)


def _insert(spec: dict[str, Any], sidecar: Sidecar, hold_application: bool) -> None:
    own_init = list(spec.get("initContainers") or ())
    containers = list(spec.get("containers") or ())
    if sidecar.native:
        spec["initContainers"] = [*sidecar.init_containers, *own_init]
    else:
        if sidecar.init_containers or own_init:
            spec["initContainers"] = [*own_init, *sidecar.init_containers]
        if hold_application:
            containers = [*sidecar.containers, *containers]
        else:
            containers = [*containers, *sidecar.containers]
    spec["containers"] = containers
    spec["volumes"] = [*(spec.get("volumes") or ()), *sidecar.volumes]
