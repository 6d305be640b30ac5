"""Reading a mesh config: a file (`--mesh-config`, analyze's `--meshConfigFile`) or the text of
the `mesh` key of Istio's `istio` ConfigMap, into the one typed `MeshConfig`.

The file may be the MeshConfig YAML itself or the whole ConfigMap manifest (its `data.mesh`).
In a cluster, serve's Kubernetes source watches the ConfigMap and hands the mesh config on with
the other objects, as a resource of kind `MeshConfig` (see `mesh_resource`), so a change to it
flows to the translator like any other change, and a bad one is refused like any other object.
It is applied over istiod's code defaults the way `ApplyMeshConfig` does: a field replaces the
default, except `defaultConfig` (its fields replace the default's one by one, `proxyMetadata`
key by key), `extensionProviders` (merged by name: a built-in is replaced in place, new ones
follow) and `trustDomainAliases` (deduplicated and sorted). Unlike istiod, which ignores fields
it does not know, every field is checked: a misspelt one is bad input, reported at its line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from meshctl.config.documents import Document, parse_text, read_file
from meshctl.config.kinds.mesh import DEFAULT_PROVIDERS, MeshConfig
from meshctl.config.paths import FieldPath, format_path
from meshctl.config.resource import Origin, Resource
from meshctl.errors import BadInputError

__all__ = ["MESH_CONFIGMAP", "MESH_KIND", "MeshConfig", "mesh_config_from", "mesh_configmap_name", "mesh_config_text", "mesh_in",
           "mesh_resource", "read_mesh_config"]

MESH_CONFIGMAP = "istio"
"""The ConfigMap istiod reads its mesh config from (key `mesh`; see `mesh_configmap_name`)."""
MESH_KEY = "mesh"
MESH_KIND = "MeshConfig"
"""The kind of the resource a cluster's mesh config travels as (Istio's `istio.mesh.v1alpha1.MeshConfig`)."""

Problem = Callable[[FieldPath, str], None]


def mesh_config_from(document: Mapping[str, Any], problem: Problem) -> MeshConfig | None:
    """The MeshConfig a document sets over istiod's defaults, or None after reporting each
    problem (a wrong or unknown field) through `problem`."""
    found = 0

    def counting(path: FieldPath, message: str) -> None:
        nonlocal found
        found += 1
        problem(path, message)

    MeshConfig.SCHEMA.check(dict(document), (), counting)
    if found:
        return None
    return MeshConfig.of(_merged(document))


def _merged(document: Mapping[str, Any]) -> dict[str, Any]:
    """The fields Istio merges with its defaults instead of replacing them, merged."""
    merged = dict(document)
    providers = merged.get("extensionProviders")
    if isinstance(providers, list):
        by_name = {provider["name"]: provider for provider in DEFAULT_PROVIDERS}
        for provider in providers:
            by_name[provider["name"]] = provider
        merged["extensionProviders"] = list(by_name.values())
    aliases = merged.get("trustDomainAliases")
    if isinstance(aliases, list):
        merged["trustDomainAliases"] = sorted(set(aliases))
    return merged


def mesh_config_text(text: str, source: str, *, line_offset: int = 0) -> MeshConfig:
    """The MeshConfig of the `mesh` key's text (as a ConfigMap holds it), or a BadInputError
    naming `source`, the line (counted from `line_offset`) and the field of each problem.
    This is what serve's Kubernetes source calls with the `istio` ConfigMap's `data.mesh`."""
    documents, errors = parse_text(text, source)
    problems = [f"{error.file}:{error.line + line_offset}: {error.message}" for error in errors]
    if problems:
        raise BadInputError(problems)
    if not documents:
        return MeshConfig()
    if len(documents) > 1:
        raise BadInputError([f"{source}: expected one mesh config document, found {len(documents)}"])
    return _from_document(documents[0], line_offset)


def read_mesh_config(file: str) -> MeshConfig:
    """A mesh config file: MeshConfig YAML or JSON, or a ConfigMap manifest holding it under
    `data.mesh`; a BadInputError names each problem's file, line and field."""
    documents, errors = read_file(file)
    problems = [str(error) for error in errors]
    if not problems and len(documents) != 1:
        problems.append(f"{file}: expected one mesh config document, found {len(documents)}")
    if problems:
        raise BadInputError(problems)
    document = documents[0]
    value = document.value
    if isinstance(value, dict) and value.get("kind") == "ConfigMap":
        data = value.get("data")
        text = data.get(MESH_KEY) if isinstance(data, dict) else None
        if not isinstance(text, str):
            line = document.line_of(("data", MESH_KEY))
            raise BadInputError([f"{file}:{line}: ConfigMap {_name(value)}: data.{MESH_KEY}: "
                                 "expected the mesh config as a string"])
        # A block scalar's text starts on the line after its key.
        return mesh_config_text(text, file, line_offset=document.line_of(("data", MESH_KEY)))
    return _from_document(document, 0)


def mesh_resource(configmap: Mapping[str, Any], origin: str) -> Resource:
    """The `istio` ConfigMap read from a cluster, as a resource of kind MeshConfig whose view is
    its MeshConfig; a BadInputError names the ConfigMap, the line in its `mesh` text and the
    field of each problem. As istiod reads it, a ConfigMap without the `mesh` key means istiod's
    defaults."""
    where = f"{origin}: ConfigMap {_name(configmap)}"
    data = configmap.get("data") or {}
    text = data.get(MESH_KEY, "") if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise BadInputError([f"{where}: data.{MESH_KEY}: expected the mesh config as a string"])
    mesh = mesh_config_text(text, f"{where}: data.{MESH_KEY}")
    metadata = configmap.get("metadata") or {}
    return Resource(kind=MESH_KIND, group="", version="v1alpha1", namespace=str(metadata.get("namespace") or ""),
                    name=str(metadata.get("name") or ""), spec={MESH_KEY: text}, origin=Origin(origin, 0),
                    revision=hashlib.blake2b(text.encode(), digest_size=12).hexdigest(), view=mesh)


def mesh_configmap_name(revision: str) -> str:
    """The ConfigMap of a control plane `revision` ("" for the default one): `istio-<revision>`."""
    return f"{MESH_CONFIGMAP}-{revision}" if revision else MESH_CONFIGMAP


def mesh_in(resources: Iterable[Resource]) -> MeshConfig | None:
    """The mesh config among `resources` (a cluster's, from `mesh_resource`), if there is one."""
    for resource in resources:
        if resource.kind == MESH_KIND:
            return resource.view_as(MeshConfig)
    return None


def _name(configmap: Mapping[str, Any]) -> str:
    metadata = configmap.get("metadata")
    if not isinstance(metadata, dict):
        return "?"
    return f"{metadata.get('namespace') or 'default'}/{metadata.get('name') or '?'}"


def _from_document(document: Document, line_offset: int) -> MeshConfig:
    if not isinstance(document.value, dict):
        raise BadInputError([f"{document.file}:{document.line + line_offset}: a mesh config is a map of fields"])
    problems: list[str] = []

    def problem(path: FieldPath, message: str) -> None:
        problems.append(f"{document.file}:{document.line_of(path) + line_offset}: {format_path(path)}: {message}")

    mesh = mesh_config_from(document.value, problem)
    if mesh is None:
        raise BadInputError(problems)
    return mesh
