"""CustomResourceDefinitions for the Istio kinds meshctl reads, with OpenAPI v3 schemas made
from meshctl's own schemas (config/schema.py, the @message classes), so the API server refuses
at admission what `meshctl validate` refuses structurally: wrong types, missing required
fields, values outside an enum or a range, and (with kubectl's strict field validation)
unknown fields. Semantic rules (`rules=`, one-of groups, patterns written for Python's `re`)
are not expressed; they stay meshctl's, and serve reports objects that break them.

A structural schema cannot recurse; a message that contains itself stops at the repetition
with `x-kubernetes-preserve-unknown-fields`, as Istio's own CRDs do.
"""

from __future__ import annotations

from typing import Any

from meshctl.config.kinds import KINDS, KindInfo
from meshctl.config.schema import Bool, Enum, Float, Free, FreeObject, Int, List, Map, Obj, Str, Type
from meshctl.kube.resources import ISTIO, ApiResource

__all__ = ["crd", "crds", "openapi"]

_STORAGE_VERSION = "v1"


def openapi(schema: Type, _seen: frozenset[int] = frozenset()) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a meshctl schema type."""
    if isinstance(schema, Obj):
        if id(schema) in _seen or schema.open:
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        inner = _seen | {id(schema)}
        out: dict[str, Any] = {"type": "object",
                               "properties": {name: openapi(field, inner) for name, field in sorted(schema.fields.items())}}
        if schema.required:
            out["required"] = sorted(schema.required)
        return out
    if isinstance(schema, List):
        out = {"type": "array", "items": openapi(schema.item, _seen)}
        if schema.min_items:
            out["minItems"] = schema.min_items
        return out
    if isinstance(schema, Map):
        return {"type": "object", "additionalProperties": openapi(schema.value, _seen)}
    if isinstance(schema, Enum):
        return {"type": "string", "enum": list(schema.values)}
    if isinstance(schema, Int):
        out = {"x-kubernetes-int-or-string": True} if schema.accept_string else {"type": "integer"}
        out.update(_bounds(schema.low, schema.high))
        return out
    if isinstance(schema, Float):
        return {"type": "number", **_bounds(schema.low, schema.high)}
    if isinstance(schema, Bool):
        return {"type": "boolean"}
    if isinstance(schema, Str):
        return {"type": "string", **({"minLength": schema.min_len} if schema.min_len else {})}
    if isinstance(schema, FreeObject):
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if isinstance(schema, Free):
        return {"x-kubernetes-preserve-unknown-fields": True}
    raise TypeError(f"no OpenAPI form for {type(schema).__name__}")


def _bounds(low: float | None, high: float | None) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if low is not None:
        bounds["minimum"] = low
    if high is not None:
        bounds["maximum"] = high
    return bounds


def crd(resource: ApiResource, info: KindInfo) -> dict[str, Any]:
    """The CRD of one Istio kind: every version meshctl accepts served, v1 stored."""
    schema = {
        "type": "object",
        "properties": {
            info.body: openapi(info.schema),
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    group_label = resource.group.replace(".", "-")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{resource.plural}.{resource.group}",
            "labels": {"app.kubernetes.io/part-of": "meshctl", "app.kubernetes.io/component": "crd"},
        },
        "spec": {
            "group": resource.group,
            "scope": "Namespaced",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                **({"shortNames": list(resource.short_names)} if resource.short_names else {}),
                "categories": ["istio-io", group_label],
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": version == _STORAGE_VERSION,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
                for version in info.versions
            ],
        },
    }


def crds() -> list[dict[str, Any]]:
    """One CRD per Istio kind meshctl reads."""
    return [crd(resource, KINDS[resource.group, resource.kind]) for resource in ISTIO]
