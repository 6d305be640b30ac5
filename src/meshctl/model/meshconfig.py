"""Reading a mesh config: a file (`--mesh-config`, analyze's `--meshConfigFile`) or the text of
the `mesh` key of Istio's `istio` ConfigMap, into the one typed `MeshConfig`.

The file may be the MeshConfig YAML itself or the whole ConfigMap manifest (its `data.mesh`).
It is applied over istiod's code defaults the way `ApplyMeshConfig` does: a field replaces the
default, except `defaultConfig` (its fields replace the default's one by one, `proxyMetadata`
key by key), `extensionProviders` (merged by name: a built-in is replaced in place, new ones
follow) and `trustDomainAliases` (deduplicated and sorted). Unlike istiod, which ignores fields
it does not know, every field is checked: a misspelt one is bad input, reported at its line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from meshctl.config.documents import Document, parse_text, read_file
from meshctl.config.kinds.mesh import DEFAULT_PROVIDERS, MeshConfig
from meshctl.config.paths import FieldPath, format_path
from meshctl.errors import BadInputError

__all__ = ["MESH_CONFIGMAP", "MeshConfig", "mesh_config_from", "mesh_config_text", "read_mesh_config"]

MESH_CONFIGMAP = "istio"
"""The ConfigMap istiod reads its mesh config from (key `mesh`; `istio-<revision>` for a revision)."""
MESH_KEY = "mesh"

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
