"""Structural OpenAPI v3 validation of custom objects, as the API server does for a CRD.

Once a CustomResourceDefinition is created, the API server checks every object of its kind
against the version's `openAPIV3Schema` before storing it: types, required properties, enums,
bounds and lengths, items and maps, with `x-kubernetes-preserve-unknown-fields` and
`x-kubernetes-int-or-string` as escapes. Fields the schema does not know are pruned, or, with
`fieldValidation=Strict` (kubectl's default), refused. CEL rules (`x-kubernetes-validations`)
are not evaluated. Each problem names the field path and the reason, as the API server's
messages do (`spec.http[0].timeout: must be of type string`, `unknown field "spec.hots"`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def validate(value: Any, schema: Schema, *, strict: bool) -> tuple[Any, list[str]]:
    """The value with unknown fields pruned, and the problems (`path: reason`); with `strict`,
    unknown fields are problems instead."""
    problems: list[str] = []
    pruned = _check(value, schema, "", problems, strict)
    return pruned, problems


def _type_ok(value: Any, wanted: str) -> bool:
    if isinstance(value, bool) and wanted in ("integer", "number"):
        return False
    if wanted == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(wanted, (object,)))


def _check(value: Any, schema: Schema, path: str, problems: list[str], strict: bool) -> Any:
    where = path or "<root>"
    if value is None:
        if not schema.get("nullable"):
            problems.append(f"{where}: must not be null")
        return value
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            problems.append(f"{where}: must be an integer or a string")
        return value
    wanted = schema.get("type")
    if wanted and not _type_ok(value, wanted):
        problems.append(f"{where}: must be of type {wanted}")
        return value
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(f'"{item}"' if isinstance(item, str) else str(item) for item in schema["enum"])
        problems.append(f"{where}: Unsupported value: {value!r}: supported values: {allowed}")
    if isinstance(value, str):
        _check_string(value, schema, where, problems)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: should be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: should be less than or equal to {schema['maximum']}")
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{where}: should have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where}: should have at most {schema['maxItems']} items")
        items = schema.get("items") or {}
        return [_check(item, items, f"{path}[{index}]", problems, strict) for index, item in enumerate(value)]
    elif isinstance(value, dict):
        return _check_object(value, schema, path, problems, strict)
    return value


def _check_string(value: str, schema: Schema, where: str, problems: list[str]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        problems.append(f"{where}: should be at least {schema['minLength']} chars long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        problems.append(f"{where}: may not be more than {schema['maxLength']} bytes")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: should match '{schema['pattern']}'")


def _check_object(value: dict[str, Any], schema: Schema, path: str, problems: list[str], strict: bool) -> dict[str, Any]:
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    out: dict[str, Any] = {}
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        if item is None and not (properties.get(key) or {}).get("nullable"):
            continue  # the API server drops nulls of fields that are not nullable
        if key in properties:
            out[key] = _check(item, properties[key], child, problems, strict)
        elif isinstance(additional, Mapping):
            out[key] = _check(item, additional, child, problems, strict)
        elif additional is True or keep_unknown or (not properties and not schema.get("type")):
            out[key] = item
        elif strict:
            problems.append(f'unknown field "{child}"')
    for name in schema.get("required") or ():
        if name not in value:
            problems.append(f"{path + '.' if path else ''}{name}: Required value")
    return out


def crd_problems(crd: Mapping[str, Any]) -> list[str]:
    """Why the API server would refuse a CustomResourceDefinition (apiextensions.k8s.io/v1):
    names and versions missing, not exactly one storage version, or a schema that is not
    structural (every node typed, unless it keeps unknown fields or is int-or-string; no
    `properties` beside `additionalProperties`; arrays with `items`)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    problems = [f"spec.names.{name}: Required value" for name in ("plural", "kind") if not names.get(name)]
    if not spec.get("group"):
        problems.append("spec.group: Required value")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        problems.append('spec.scope: Unsupported value: supported values: "Cluster", "Namespaced"')
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if (crd.get("metadata") or {}).get("name") != expected:
        problems.append(f"metadata.name: Invalid value: must be spec.names.plural+\".\"+spec.group ({expected})")
    versions = spec.get("versions") or []
    if sum(1 for version in versions if version.get("storage")) != 1:
        problems.append("spec.versions: Invalid value: must have exactly one version marked as storage version")
    for index, version in enumerate(versions):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            problems.append(f"spec.versions[{index}].schema.openAPIV3Schema: Required value")
        else:
            problems += _structural(schema, f"spec.versions[{index}].schema.openAPIV3Schema")
    return problems


def _structural(schema: Schema, path: str) -> list[str]:
    problems: list[str] = []
    escapes = schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-int-or-string")
    if not schema.get("type") and not escapes:
        problems.append(f"{path}.type: Required value: must not be empty for specified object fields")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive")
    if schema.get("type") == "array" and "items" not in schema:
        problems.append(f"{path}.items: Required value: must be specified")
    for name, child in (schema.get("properties") or {}).items():
        problems += _structural(child, f"{path}.properties[{name}]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        problems += _structural(schema["additionalProperties"], f"{path}.additionalProperties")
    if isinstance(schema.get("items"), Mapping):
        problems += _structural(schema["items"], f"{path}.items")
    return problems
