"""`kube-inject` over whole manifests: find the pod template in each object, inject it, and
write the object back; any other object is written back as it was.

The kinds and where their pod lives are Istio's (`IntoObject`): a Pod is its own template;
Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers and Jobs keep it in
`spec.template`; a CronJob keeps its pod spec in `spec.jobTemplate.spec.template.spec` and, as
istioctl does, the injected labels and annotations go on `spec.jobTemplate.metadata`. A `v1
List` is injected item by item. The workload (for `ISTIO_META_OWNER`) is the object itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meshctl.config.documents import Document
from meshctl.config.paths import FieldPath, format_path
from meshctl.inject.pod import InjectionError, inject_template, skip_reason
from meshctl.inject.settings import InjectSettings
from meshctl.inject.sidecar import Owner

__all__ = ["KINDS", "Outcome", "inject_documents"]

_TEMPLATE = ("spec", "template")
# kind → (where the pod's metadata is, where its spec is)
KINDS: dict[str, tuple[FieldPath, FieldPath]] = {
    "Pod": (("metadata",), ("spec",)),
    "Deployment": (_TEMPLATE + ("metadata",), _TEMPLATE + ("spec",)),
    "StatefulSet": (_TEMPLATE + ("metadata",), _TEMPLATE + ("spec",)),
    "DaemonSet": (_TEMPLATE + ("metadata",), _TEMPLATE + ("spec",)),
    "ReplicaSet": (_TEMPLATE + ("metadata",), _TEMPLATE + ("spec",)),
    "ReplicationController": (_TEMPLATE + ("metadata",), _TEMPLATE + ("spec",)),
    "Job": (_TEMPLATE + ("metadata",), _TEMPLATE + ("spec",)),
    "CronJob": (("spec", "jobTemplate", "metadata"), ("spec", "jobTemplate", "spec", "template", "spec")),
}


@dataclass(slots=True)
class Outcome:
    """What kube-inject made of the input: the output text, skip notes and refusals."""

    text: str = ""
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def inject_documents(text: str, documents: Sequence[Document], settings: InjectSettings) -> Outcome:
    """Every document of `text` (parsed as `documents`), injected or passed through, each
    followed by `---` as istioctl writes them."""
    from meshctl.formats import to_yaml

    outcome = Outcome()
    chunks = _raw_chunks(text, documents)
    parts = []
    for document, raw in zip(documents, chunks, strict=True):
        value = document.value
        if isinstance(value, dict) and (value.get("kind") in KINDS or _is_list(value)):
            parts.append(to_yaml(_inject_object(value, document, (), settings, outcome)))
        else:
            parts.append(raw if raw.endswith("\n") else raw + "\n")
    outcome.text = "".join(f"{part}---\n" for part in parts)
    return outcome


def _is_list(value: dict[str, Any]) -> bool:
    return value.get("kind") == "List" and value.get("apiVersion") == "v1" and isinstance(value.get("items"), list)


def _inject_object(value: dict[str, Any], document: Document, prefix: FieldPath, settings: InjectSettings,
                   outcome: Outcome) -> dict[str, Any]:
    if _is_list(value):
        items = [_inject_object(item, document, (*prefix, "items", index), settings, outcome)
                 if isinstance(item, dict) and item.get("kind") in KINDS else item
                 for index, item in enumerate(value["items"])]
        return {**value, "items": items}
    kind = str(value["kind"])
    metadata_path, spec_path = KINDS[kind]
    metadata = value.get("metadata")
    top: dict[str, Any] = metadata if isinstance(metadata, dict) else {}
    namespace = str(top.get("namespace") or "")
    name = str(top.get("name") or "")
    subject = f'{kind} "{namespace + "/" if namespace else ""}{name}"'
    template = {"metadata": _get(value, metadata_path) or {}, "spec": _get(value, spec_path) or {}}
    reason = skip_reason(namespace, template)
    if reason:
        outcome.notes.append(f"===> Skipping injection because {subject} {reason}")
        return value
    owner = Owner(kind, str(value.get("apiVersion") or ""), name)
    try:
        injected = inject_template(template, namespace, owner, settings)
    except InjectionError as exc:
        where = f"{kind} {namespace or 'default'}/{name or '<unnamed>'}"
        for annotation, message in exc.problems:
            path = (*prefix, *metadata_path, "annotations", annotation) if annotation else (*prefix, *metadata_path)
            outcome.problems.append(f"{document.file}:{document.line_of(path)}: {where}: "
                                    f"{format_path(path)}: {message}")
        return value
    result = _put(value, metadata_path, injected["metadata"])
    return _put(result, spec_path, injected["spec"])


def _get(value: Any, path: FieldPath) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _put(value: dict[str, Any], path: FieldPath, new: Any) -> dict[str, Any]:
    """`value` with `new` at `path` (copies along the path; the input is not modified)."""
    key = path[0]
    if len(path) == 1:
        return {**value, str(key): new}
    child = value.get(str(key))
    return {**value, str(key): _put(child if isinstance(child, dict) else {}, path[1:], new)}


def _raw_chunks(text: str, documents: Sequence[Document]) -> list[str]:
    """Each document's own text: from its first line to the separator before the next one."""
    lines = text.splitlines(keepends=True)
    starts = [document.line - 1 for document in documents]
    chunks = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        chunk = lines[start:end]
        separators = [n for n, line in enumerate(chunk) if line.rstrip() in ("---", "...") or line.startswith("--- ")]
        last = index + 1 == len(starts)
        if separators and (not last or all(not line.strip() or line.lstrip().startswith("#")
                                           for line in chunk[separators[-1] + 1:])):
            chunk = chunk[:separators[-1]]
        chunks.append("".join(chunk))
    return chunks
