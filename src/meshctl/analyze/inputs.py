"""What `meshctl analyze` analyzes, gathered the way `istioctl analyze` gathers it.

Unlike translation, analysis never refuses its input: an object that fails its schema is
reported on (IST0106, one message per problem, at the problem's line) and, when its fields
still have their declared types, analyzed like the rest, as istioctl analyzes it. Only what cannot be read as an object at all (a file that is
not YAML, a document without a kind) is a file error. A later definition of an object replaces
an earlier one, as files applied over a cluster do. Objects in Kubernetes' own namespaces are
ignored, and when the input has no ingress gateway, Istio's default one (the
`istio-ingressgateway` Pod and Service in the Istio namespace) stands in for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshctl.analyze.finding import Finding, finding
from meshctl.analyze.messages import SCHEMA_VALIDATION_ERROR
from meshctl.analyze.schema import istio_wording
from meshctl.config.documents import Document, ReadError, expand_inputs, parse_text
from meshctl.config.loader import FileResult, Problem, Rejected, load_documents, load_file
from meshctl.config.resource import Resource
from meshctl.model.meshconfig import MeshConfig
from meshctl.model.selectors import selects

__all__ = ["SYSTEM_NAMESPACES", "AnalysisInput", "gather", "schema_findings"]

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "local-path-storage"})
"""Namespaces istioctl analyze ignores (objects in them, and Namespace objects of that name)."""

INGRESS_LABELS: Mapping[str, str] = {"istio": "ingressgateway"}


@dataclass(slots=True)
class AnalysisInput:
    """The resources to analyze, those assumed because the input lacks them (Istio's default
    ingress gateway), the IST0106 findings, the problems that are no object's (unreadable
    files and documents), the files read, and the mesh config to analyze them with."""

    mesh: MeshConfig = field(default_factory=MeshConfig)
    resources: list[Resource] = field(default_factory=list)
    assumed: list[Resource] = field(default_factory=list)
    schema_findings: list[Finding] = field(default_factory=list)
    file_errors: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _ignored(resource: Resource) -> bool:
    if resource.kind == "Namespace":
        return resource.name in SYSTEM_NAMESPACES
    return resource.namespace in SYSTEM_NAMESPACES


def _gather(results: Iterable[FileResult], read_errors: Iterable[ReadError] = ()) -> AnalysisInput:
    gathered = AnalysisInput(file_errors=[Problem(error.file, error.line, error.message) for error in read_errors])
    latest: dict[tuple[str, str, str], Resource] = {}
    for result in results:
        gathered.notes.extend(result.notes)
        owned = {id(problem) for rejected in result.rejected for problem in rejected.problems}
        gathered.file_errors.extend(problem for problem in result.problems if id(problem) not in owned)
        for rejected in result.rejected:
            if _ignored(rejected.resource):
                continue
            latest.pop(rejected.resource.key, None)
            if rejected.resource.view is not None:
                latest[rejected.resource.key] = rejected.resource
            gathered.schema_findings.extend(schema_findings([rejected]))
        for resource in result.resources:
            if not _ignored(resource):
                latest.pop(resource.key, None)
                latest[resource.key] = resource
    gathered.resources = list(latest.values())
    return gathered


def schema_findings(rejected: Iterable[Rejected]) -> list[Finding]:
    """What refused objects get reported as: IST0106, one per problem, at the problem's line, in
    Istio's words where Istio refuses the same thing (see `schema`)."""
    return [
        finding(SCHEMA_VALIDATION_ERROR, item.resource, (), istio_wording(item.resource.kind, problem), at=problem.line)
        for item in rejected for problem in item.problems
    ]


def gather(inputs: Sequence[str], namespace: str, mesh: MeshConfig, istio_namespace: str = "istio-system",
           cluster: Iterable[Mapping[str, Any]] | None = None) -> AnalysisInput:
    """What to analyze: a cluster's objects (when given), with the files applied over them;
    for files alone, with Istio's default ingress gateway where they lack one."""
    gathered = _from_objects(cluster, namespace) if cluster is not None else AnalysisInput()
    if inputs:
        files = _from_files(inputs, namespace)
        replaced = {resource.key for resource in files.resources}
        files.resources[:0] = [resource for resource in gathered.resources if resource.key not in replaced]
        files.schema_findings[:0] = gathered.schema_findings
        gathered = files
    gathered.mesh = mesh
    if cluster is None:
        _add_default_gateway(gathered, istio_namespace)
    return gathered


def _from_files(inputs: Sequence[str], namespace: str) -> AnalysisInput:
    """Files, directories (recursive) and `-`; objects without a namespace go to `namespace`."""
    files, errors = expand_inputs(list(inputs))
    gathered = _gather((load_file(file, namespace) for file in files), errors)
    gathered.files = files
    return gathered


def _from_objects(objects: Iterable[Mapping[str, Any]], namespace: str) -> AnalysisInput:
    """Objects read from a cluster: no file and no lines, so findings name only the object."""
    documents = [Document("", 0, dict(obj)) for obj in objects]
    return _gather([load_documents("", documents, (), namespace)])


def _default_gateway_yaml(namespace: str, service: str) -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {service}-dummypod
  namespace: {namespace}
  labels: {{istio: ingressgateway}}
spec:
  containers:
  - name: istio-proxy
    image: proxyv2
---
apiVersion: v1
kind: Service
metadata:
  name: {service}
  namespace: {namespace}
spec:
  selector: {{istio: ingressgateway}}
  ports:
  - {{name: http2, port: 80, targetPort: 80, nodePort: 31380, protocol: TCP}}
  - {{name: https, port: 443, targetPort: 443, nodePort: 31390, protocol: TCP}}
  - {{name: tcp, port: 31400, targetPort: 31400, nodePort: 31400, protocol: TCP}}
  - {{name: tls, port: 15443, targetPort: 15443, nodePort: 31447, protocol: TCP}}
"""


def _template_labels(resource: Resource) -> Mapping[str, str]:
    if resource.kind != "Deployment":
        return resource.labels
    from meshctl.config.kinds.kubernetes import DeploymentSpec

    metadata = resource.view_as(DeploymentSpec).template.metadata
    return metadata.labels if metadata is not None else {}


def _add_default_gateway(gathered: AnalysisInput, namespace: str) -> None:
    """Istio's default ingress gateway, added for what the input lacks of it: the Service when
    there is no `<ingressService>` Service in the Istio namespace, the Pod when no Pod or
    Deployment carries the `istio: ingressgateway` label. Neither comes from a file, so
    findings on them name no file. Nothing is added with `ingressControllerMode: OFF`."""
    if gathered.mesh.ingress_controller_mode == "OFF":
        return
    documents, _ = parse_text(_default_gateway_yaml(namespace, gathered.mesh.ingress_service), "")
    defaults = load_documents("", documents, (), namespace).resources
    keys = {resource.key for resource in gathered.resources}
    has_workload = any(resource.kind in ("Pod", "Deployment") and selects(INGRESS_LABELS, _template_labels(resource))
                       for resource in gathered.resources)
    for resource in defaults:
        if resource.key in keys or (resource.kind == "Pod" and has_workload):
            continue
        gathered.assumed.append(resource)
