"""Read files into validated `Resource`s, reporting every problem of every file at once.

Each problem reads `FILE:LINE: Kind namespace/name: field.path: what is wrong`. Nothing here
raises on bad input: the caller decides whether problems are fatal (translate, validate) or
refused per file while the rest keeps serving (serve).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshctl.collector import collector_paused
from meshctl.config.apigroups import unknown_kind_problem
from meshctl.config.documents import Document, ReadError, decode, expand_inputs, parse_text, read_file
from meshctl.config.kinds import KINDS, KindInfo, split_api_version
from meshctl.config.kinds.common import LABELS
from meshctl.config.paths import FieldPath, format_path
from meshctl.config.resource import Origin, Resource, SensitiveSpec
from meshctl.config.schema import Free, Map, Obj, Str
from meshctl.config.values import is_dns1123_label, is_dns1123_subdomain, shown

__all__ = [
    "DEFAULT_NAMESPACE",
    "FileResult",
    "LoadResult",
    "MAX_MESSAGE",
    "METADATA",
    "Problem",
    "Rejected",
    "load",
    "load_data",
    "load_documents",
    "load_file",
    "load_object",
    "merge",
]

DEFAULT_NAMESPACE = "default"
MAX_MESSAGE = 1000
"""Longest problem message: rules quote what the user wrote, which may be a megabyte long."""

METADATA = Obj(
    {
        "name": Str(),
        "namespace": Str(),
        "labels": LABELS,
        "annotations": Map(Str()),
        "creationTimestamp": Str(),
        "generateName": Str(),
        "generation": Free(),
        "resourceVersion": Str(),
        "uid": Str(),
        "ownerReferences": Free(),
        "managedFields": Free(),
        "finalizers": Free(),
        "deletionTimestamp": Str(),
        "deletionGracePeriodSeconds": Free(),
        "selfLink": Str(),
    }
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, located as precisely as the input allows."""

    file: str
    line: int
    message: str
    subject: str = ""
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where]
        if self.subject:
            parts.append(self.subject)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An object refused for its problems, kept so that `meshctl analyze` can report them on it
    (IST0106) and, as istioctl does, still analyze it. Its `resource` has a view only when every
    field has the type its message declares (the problems are about values: a protocol
    Kubernetes does not know, a rule the webhook enforces); otherwise the view is None and
    nothing may read its spec."""

    resource: Resource
    problems: tuple[Problem, ...]


@dataclass(slots=True)
class FileResult:
    """What one file contributed: its resources, its problems, notes on skipped objects, and
    the objects its problems refused, and how many documents it held (none: the file is empty, or
    only comments)."""

    file: str
    resources: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    documents: int = 0


@dataclass(slots=True)
class LoadResult:
    resources: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _without_nulls(value: Any) -> Any:
    """Kubernetes reads `field: null` as an absent field; so does everything after the loader."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _revision(value: Any) -> str:
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(data.encode(), digest_size=12).hexdigest()


class _DocumentReader:
    """Validates one document (or the items of a `List`) into resources."""

    def __init__(self, result: FileResult, default_namespace: str) -> None:
        self.result = result
        self.default_namespace = default_namespace

    def read(self, doc: Document) -> None:
        value = doc.value
        if not isinstance(value, dict):
            shown = "a list" if isinstance(value, list) else f"a {type(value).__name__}"
            self._problem(doc, (), f"document is {shown}, expected a Kubernetes object")
            return
        api_version = value.get("apiVersion")
        kind = value.get("kind")
        if not isinstance(kind, str) or not kind:
            self._problem(doc, ("kind",), "kind: required field is missing or not a string")
            return
        if not isinstance(api_version, str) or not api_version:
            self._problem(doc, ("apiVersion",), "apiVersion: required field is missing or not a string")
            return
        group, version = split_api_version(api_version)
        if kind == "List" and group == "":
            self._read_list(doc)
            return
        info = KINDS.get((group, kind))
        if info is None:
            problem = unknown_kind_problem(group, kind)
            if problem:
                self._problem(doc, ("kind",), problem, "kind")
            else:
                self.result.notes.append(f"{doc.file}:{doc.line}: skipped {_short(kind)} ({_short(api_version)}): "
                                         "not a kind meshctl reads")
            return
        self._read_object(doc, info, version)

    def _read_list(self, doc: Document) -> None:
        items = doc.value.get("items")
        if not isinstance(items, list):
            self._problem(doc, ("items",), "items: expected a list")
            return
        for index, item in enumerate(items):
            prefix = ("items", index)
            lines = {path[2:]: line for path, line in doc.lines.items() if path[:2] == prefix}
            self.read(Document(doc.file, doc.line_of(prefix), item, lines))

    def _read_object(self, doc: Document, info: KindInfo, version: str) -> None:
        value = doc.value
        metadata = value.get("metadata")
        subject_name = metadata.get("name") if isinstance(metadata, dict) else None
        namespace = self.default_namespace
        if isinstance(metadata, dict) and isinstance(metadata.get("namespace"), str) and metadata["namespace"]:
            namespace = metadata["namespace"]
        if not info.namespaced:
            namespace = ""
        name_text = _short(subject_name) if isinstance(subject_name, str) and subject_name else "<unnamed>"
        subject = f"{info.kind} {namespace}/{name_text}" if namespace else f"{info.kind} {name_text}"
        before = len(self.result.problems)

        def report(path: FieldPath, message: str) -> None:
            self.result.problems.append(
                Problem(doc.file, doc.line_of(path), _clipped(message), subject, _short(format_path(path)))
            )

        if version not in info.versions:
            report(("apiVersion",), f"unsupported version {shown(version)} of {info.kind}; use "
                   + " or ".join(f"{info.group + '/' if info.group else ''}{v}" for v in info.versions))
        allowed = {"apiVersion", "kind", "metadata", "status"}
        if info.body:
            allowed.add(info.body)
        body_fields = set(info.schema.fields) if not info.body else set()
        for key in value:
            if key not in allowed and key not in body_fields:
                report((key,), f"unknown field {shown(key)}")
        if not isinstance(metadata, dict):
            report(("metadata",), "required field is missing" if metadata is None else "expected an object")
            return
        METADATA.check(metadata, ("metadata",), report)
        if not subject_name:
            report(("metadata", "name"), "required field is missing")
        elif isinstance(subject_name, str) and not is_dns1123_subdomain(subject_name):
            report(("metadata", "name"), f"invalid name {shown(subject_name)}: must be a lowercase DNS-1123 subdomain")
        if info.namespaced and not is_dns1123_label(namespace):
            report(("metadata", "namespace"),
                   f"invalid namespace {shown(namespace)}: must be a lowercase DNS-1123 label")
        if info.body:
            body = _without_nulls(value.get(info.body) or {})
            info.schema.check(body, (info.body,), report)
        else:
            body = _without_nulls({key: item for key, item in value.items() if key in body_fields})
            info.schema.check(body, (), report)
        status = value.get("status")
        if info.status_schema is not None and status is not None:
            info.status_schema.check(status, ("status",), report)
        if info.sensitive:
            body = SensitiveSpec(body)
        if len(self.result.problems) > before:
            if isinstance(subject_name, str) and subject_name:
                problems = tuple(self.result.problems[before:])
                stub = Resource(kind=info.resource_kind, group=info.group, version=version, namespace=namespace,
                                name=subject_name, spec=body, origin=Origin(doc.file, doc.line),
                                revision=_revision(value), labels=_strings(metadata.get("labels")),
                                annotations=_strings(metadata.get("annotations")), lines=doc.lines,
                                view=_typed_view(info, body, problems),
                                status_view=_typed_status(info, status, problems))
                self.result.rejected.append(Rejected(stub, problems))
            return
        assert isinstance(subject_name, str)  # the schema requires metadata.name
        self.result.resources.append(
            Resource(
                kind=info.resource_kind,
                group=info.group,
                version=version,
                namespace=namespace,
                name=subject_name,
                spec=body,
                origin=Origin(doc.file, doc.line),
                revision=_revision(value),
                labels=metadata.get("labels") or {},
                annotations=metadata.get("annotations") or {},
                created=metadata.get("creationTimestamp") or "",
                generation=metadata["generation"] if isinstance(metadata.get("generation"), int) else 0,
                status=status if isinstance(status, dict) else {},
                lines=doc.lines,
                view=info.view_of(body),
                status_view=info.status_view_of(status if isinstance(status, dict) else {}),
            )
        )

    def _problem(self, doc: Document, path: FieldPath, message: str, field: str = "") -> None:
        self.result.problems.append(Problem(doc.file, doc.line_of(path), _clipped(message), field=field))


def _short(text: str, limit: int = 120) -> str:
    """A name or field path as a subject shows it: long ones cut in the middle."""
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 2:]}"


def _clipped(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else _short(message, MAX_MESSAGE)


def _typed_view(info: KindInfo, body: Any, problems: Sequence[Problem]) -> object:
    """The view of a body that failed validation, when its fields have the declared types."""
    if not isinstance(body, dict) or any(problem.message.startswith(_SHAPE_PROBLEMS) for problem in problems):
        return None
    try:
        return info.view_of(body)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _typed_status(info: KindInfo, status: Any, problems: Sequence[Problem]) -> object:
    """The status view of an object that failed validation, when its status is not the problem
    (an absent status reads as an empty one, as for accepted objects)."""
    if any(problem.field.startswith("status") for problem in problems):
        return None
    try:
        return info.status_view_of(status if isinstance(status, dict) else {})
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


_SHAPE_PROBLEMS = ("expected ",)


def _strings(value: Any) -> dict[str, str]:
    """The string entries of a label or annotation map that may have failed validation."""
    if not isinstance(value, dict):
        return {}
    return {key: item for key, item in value.items() if isinstance(key, str) and isinstance(item, str)}


def load_file(file: str, default_namespace: str = DEFAULT_NAMESPACE) -> FileResult:
    """Every resource of one file, or the problems that kept them out."""
    with collector_paused():
        documents, errors = read_file(file)
        return load_documents(file, documents, errors, default_namespace)


def load_data(data: bytes, name: str, default_namespace: str = DEFAULT_NAMESPACE) -> FileResult:
    """The bytes of one input that is not a file on disk (a file as a git revision holds it),
    read as `load_file` reads a file; `name` is what errors and origins call it."""
    text, error = decode(data, name)
    if error is not None:
        return load_documents(name, [], [error], default_namespace)
    assert text is not None
    with collector_paused():
        documents, errors = parse_text(text, name)
        return load_documents(name, documents, errors, default_namespace)


def load_documents(file: str, documents: Sequence[Document], errors: Iterable[ReadError] = (),
                   default_namespace: str = DEFAULT_NAMESPACE) -> FileResult:
    """Every resource of documents already parsed (from a file, or objects from a cluster)."""
    result = FileResult(file, documents=len(documents))
    result.problems.extend(_read_errors(errors))
    reader = _DocumentReader(result, default_namespace)
    for doc in documents:
        reader.read(doc)
    return result


def load_object(value: Any, origin: str, default_namespace: str = DEFAULT_NAMESPACE) -> FileResult:
    """One object that comes from elsewhere than a file (a cluster's API server), through the
    same validation as a file's: its resource, or the problems that keep it out, all reported
    at `origin` (there are no lines to point at)."""
    result = FileResult(origin)
    _DocumentReader(result, default_namespace).read(Document(origin, 0, value))
    return result


def _read_errors(errors: Iterable[ReadError]) -> list[Problem]:
    return [Problem(error.file, error.line, error.message) for error in errors]


def merge(results: Sequence[FileResult]) -> LoadResult:
    """Combine per-file results, refusing two definitions of the same object."""
    merged = LoadResult()
    first: dict[tuple[str, str, str], Resource] = {}
    for result in results:
        merged.problems.extend(result.problems)
        merged.notes.extend(result.notes)
        merged.rejected.extend(result.rejected)
        for resource in result.resources:
            seen = first.get(resource.key)
            if seen is not None:
                merged.problems.append(
                    Problem(resource.origin.file, resource.origin.line,
                            f"defined twice; first definition at {seen.origin}", resource.ref())
                )
                continue
            first[resource.key] = resource
            merged.resources.append(resource)
    return merged


def load(inputs: Sequence[str], default_namespace: str = DEFAULT_NAMESPACE) -> LoadResult:
    """Resources from files, directories (recursive) and `-` (stdin)."""
    files, errors = expand_inputs(list(inputs))
    results = [FileResult("", problems=_read_errors(errors))]
    results.extend(load_file(file, default_namespace) for file in files)
    return merge(results)
