"""Creating, updating and deleting objects given as manifests (`meshctl install --apply`,
`meshctl uninstall`), as `kubectl apply -f` and `kubectl delete -f` would.

Each object is created; one that exists already is merge-patched with the manifest, which
keeps what the API server filled in (a Service's clusterIP) and replaces what the manifest
says. Kinds are mapped to their REST paths through discovery, as kubectl maps them, so CRDs
and built-in kinds are handled alike. Objects are applied in the order given (namespaces and
CRDs first, which `meshctl install` guarantees) and deleted in reverse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshctlError
from meshctl.kube.rest import MERGE_PATCH, ApiError, call_json

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from meshctl.kube.client import KubeClient

__all__ = ["Outcome", "apply_objects", "delete_objects"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one object, in kubectl's words: `created`, `configured`, `deleted`,
    `not found`."""

    ref: str
    action: str

    def __str__(self) -> str:
        return f"{self.ref} {self.action}"


class _Paths:
    """Kind to REST path, from the API server's discovery documents (one per group version)."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.known: dict[str, dict[str, tuple[str, bool]]] = {}

    def collection(self, obj: Mapping[str, Any]) -> tuple[str, str]:
        """(the collection path to POST to, the object's own path)."""
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        resources = self.known.get(api_version)
        if resources is None:
            base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            try:
                document = call_json(self.api, "GET", base)
            except ApiError as exc:
                raise MeshctlError(f"the API server does not serve {api_version} ({exc})") from None
            resources = {r["kind"]: (r["name"], bool(r.get("namespaced")))
                         for r in document.get("resources", ()) if "/" not in r["name"]}
            self.known[api_version] = resources
        if kind not in resources:
            raise MeshctlError(f"the API server does not serve {kind} in {api_version}")
        plural, namespaced = resources[kind]
        metadata = obj.get("metadata") or {}
        base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        if namespaced:
            base += f"/namespaces/{metadata.get('namespace') or 'default'}"
        return f"{base}/{plural}", f"{base}/{plural}/{metadata.get('name', '')}"


def _ref(obj: Mapping[str, Any]) -> str:
    """`kind.group/name`, as kubectl reports it (`deployment.apps/istiod configured`)."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", "")).lower()
    return f"{kind}.{group}/{(obj.get('metadata') or {}).get('name', '')}" if group else \
        f"{kind}/{(obj.get('metadata') or {}).get('name', '')}"


def apply_objects(client: KubeClient, objects: Iterable[Mapping[str, Any]]) -> list[Outcome]:
    """Create each object, or merge-patch it with the manifest if it exists."""
    paths = _Paths(client.api)
    done: list[Outcome] = []
    for obj in objects:
        collection, own = paths.collection(obj)
        try:
            call_json(client.api, "POST", collection, body=dict(obj), timeout=client.timeout)
            done.append(Outcome(_ref(obj), "created"))
            continue
        except ApiError as exc:
            if exc.status != 409:
                raise MeshctlError(f"cannot create {_ref(obj)}: {exc} (HTTP {exc.status})") from None
        try:
            call_json(client.api, "PATCH", own, body=dict(obj), content_type=MERGE_PATCH, timeout=client.timeout)
        except ApiError as exc:
            raise MeshctlError(f"cannot update {_ref(obj)}: {exc} (HTTP {exc.status})") from None
        done.append(Outcome(_ref(obj), "configured"))
    return done


def delete_objects(client: KubeClient, objects: Iterable[Mapping[str, Any]]) -> list[Outcome]:
    """Delete each object, last first; one already gone is reported, not an error."""
    paths = _Paths(client.api)
    done: list[Outcome] = []
    for obj in reversed(list(objects)):
        try:
            _, own = paths.collection(obj)
            call_json(client.api, "DELETE", own, timeout=client.timeout)
        except ApiError as exc:
            if exc.status != 404:
                raise MeshctlError(f"cannot delete {_ref(obj)}: {exc} (HTTP {exc.status})") from None
            done.append(Outcome(_ref(obj), "not found"))
            continue
        except MeshctlError:  # the kind is not served (its CRD is gone): nothing of it is left
            done.append(Outcome(_ref(obj), "not found"))
            continue
        done.append(Outcome(_ref(obj), "deleted"))
    return done
