"""A Kubernetes API server as a live configuration source, as istiod's registry and CRD client are.

One reflector per kind lists and watches it (meshctl.kube.watch: resourceVersion resumption,
bookmarks, a relist on 410 Gone, backoff on errors). Every object goes through the loader's
per-object path, the same validation a file gets, so an invalid VirtualService in the cluster is
refused with `Kind ns/name: field: why` exactly as it would be in a file, and the rest keeps
serving; an object that was valid and is then updated into an invalid one keeps serving its
last good version, as a file does. Nothing is handed to the server before every kind has been
listed once, so the first snapshot is complete; after that, changes are debounced exactly as
the directory's are, and an update is yielded only when the accepted set or the refusals
changed.

The mesh config is the `mesh` key of istiod's ConfigMap (`istio` in its namespace), watched
like the rest when serve is given one to watch: it travels as a resource of kind MeshConfig,
and a bad one is refused with the ConfigMap's name, the line and the field, while the last
good one keeps serving; a deleted one means istiod's defaults again.

Built-in kinds are reduced to what meshctl reads before validation (istiod's informers keep
only container ports of pods, for instance): the API server has validated them already, fields
added by newer Kubernetes versions must not make meshctl refuse a Pod, and 10,000 pods' probes,
env and volumes would cost memory for nothing. The resourceVersion stays out of the Resource, so
a write that changes nothing meshctl reads (a pod's container status) changes no revision and
pushes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshctl.config.kinds import KINDS
from meshctl.config.loader import load_object
from meshctl.config.schema import List, Map, Obj, Type
from meshctl.errors import BadInputError
from meshctl.kube.resources import GATEWAY_API, ISTIO, REGISTRY, ApiResource
from meshctl.kube.watch import Changed, Listed, Reflector
from meshctl.model.meshconfig import mesh_resource
from meshctl.sources.base import Rejection, SourceUpdate, distinct
from meshctl.sources.debounce import debounce

if TYPE_CHECKING:
    from meshctl.config.resource import Resource
    from meshctl.kube.client import KubeClient

__all__ = ["ORIGIN", "KubernetesSource"]

log = logging.getLogger("meshctl.sources")

ORIGIN = "kubernetes"
"""Where objects read from the API server say they come from (there is no file and no line)."""

ObjectId = tuple[str, str, str]
"""(kind, namespace, name)."""

_KEPT_METADATA = ("name", "namespace", "labels", "annotations", "creationTimestamp", "uid", "ownerReferences",
                  "deletionTimestamp", "generateName", "generation")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_ISTIO_GROUPS = frozenset(resource.group for resource in (*ISTIO, *GATEWAY_API))


@dataclass(slots=True)
class _Entry:
    """One object: the API's resourceVersion last seen, its last accepted version, and why its
    current version is refused (if it is)."""

    api_revision: str
    accepted: Resource | None
    refused: Rejection | None


class KubernetesSource:
    """Resources of the kinds in `resources` from one API server, kept current by watches."""

    def __init__(
        self,
        client: KubeClient,
        resources: Sequence[ApiResource] = (*REGISTRY, *ISTIO),
        *,
        debounce_after: float = 0.1,
        debounce_max: float = 10.0,
        reflector: Callable[..., Reflector] = Reflector,
    ) -> None:
        self.client = client
        self.resources = tuple(resources)
        self.debounce_after = debounce_after
        self.debounce_max = debounce_max
        self.reflectors = [reflector(client, resource, self._from_thread) for resource in self.resources]
        self._objects: dict[ObjectId, _Entry] = {}
        self._listed: set[ApiResource] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty: asyncio.Queue[set[Hashable] | object] | None = None
        self._synced: asyncio.Event | None = None

    def updates(self) -> AsyncIterator[SourceUpdate]:
        """The complete state once every kind is listed, then one update per debounced batch
        of changes that altered what is accepted or refused."""
        return distinct(self._states())

    async def _states(self) -> AsyncIterator[SourceUpdate]:
        self._loop = asyncio.get_running_loop()
        self._dirty = asyncio.Queue()
        self._synced = asyncio.Event()
        for reflector in self.reflectors:
            reflector.start()
        try:
            await self._synced.wait()
            while not self._dirty.empty():  # already part of the first update
                self._dirty.get_nowait()
            update = self.current()
            log.info("kubernetes: every kind listed", extra={"resources": len(update.resources),
                                                             "rejected": len(update.rejected)})
            yield update
            async for _ in debounce(self._dirty, self.debounce_after, self.debounce_max):
                yield self.current()
        finally:
            self.stop()

    def stop(self) -> None:
        """Ask every reflector to stop (without waiting: their threads end on their own)."""
        for reflector in self.reflectors:
            reflector.stop(timeout=0)

    def current(self) -> SourceUpdate:
        accepted = [entry.accepted for entry in self._objects.values() if entry.accepted is not None]
        accepted.sort(key=lambda r: (r.kind, r.namespace, r.name))
        refused = sorted((e.refused for e in self._objects.values() if e.refused is not None), key=lambda r: r.file)
        return SourceUpdate(tuple(accepted), tuple(refused))

    def _from_thread(self, resource: ApiResource, change: Listed | Changed) -> None:
        """A reflector's sink: hand the change to the event loop, where all state lives."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.take, resource, change)

    def take(self, resource: ApiResource, change: Listed | Changed) -> None:
        """Apply one list or watch event to the state; mark what it changed."""
        if isinstance(change, Listed):
            changed = self._replace(resource, change.objects)
            if resource not in self._listed:
                self._listed.add(resource)
                if len(self._listed) == len(self.resources) and self._synced is not None:
                    self._synced.set()
        elif change.type == "DELETED":
            changed = self._forget(_object_id(resource, change.object))
        else:
            changed = self._store(resource, change.object)
        if changed and self._dirty is not None:
            self._dirty.put_nowait(changed)

    def _replace(self, resource: ApiResource, objects: Iterable[dict[str, Any]]) -> set[Hashable]:
        """A complete listing: store every object, forget those of the kind no longer there
        (deleted while the watch was down: the listing is the only news of it)."""
        changed: set[Hashable] = set()
        present: set[ObjectId] = set()
        for obj in objects:
            present.add(_object_id(resource, obj))
            changed |= self._store(resource, obj)
        for gone in [key for key in self._objects if key[0] == resource.kind and key not in present]:
            changed |= self._forget(gone)
        return changed

    def _store(self, resource: ApiResource, obj: dict[str, Any]) -> set[Hashable]:
        key = _object_id(resource, obj)
        api_revision = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        entry = self._objects.get(key)
        if entry is not None and api_revision and entry.api_revision == api_revision:
            return set()
        read, problems = _read(resource, obj)
        accepted: Resource | None = entry.accepted if entry is not None else None
        refused: Rejection | None = None
        if read is not None:
            accepted = read
            if entry is not None and entry.refused is not None:
                log.info("object accepted again", extra={"object": _ref(key)})
        else:
            refused = Rejection(_ref(key), problems)
            if entry is None or entry.refused != refused:
                reason = "object refused, its last good version keeps serving" if accepted else "object refused"
                for problem in problems:
                    log.error("%s: %s", reason, problem, extra={"object": refused.file})
        before = _state(entry.accepted, entry.refused) if entry is not None else None
        self._objects[key] = _Entry(api_revision, accepted, refused)
        return {key} if before != _state(accepted, refused) else set()

    def _forget(self, key: ObjectId) -> set[Hashable]:
        entry = self._objects.pop(key, None)
        if entry is not None and entry.refused is not None:
            log.info("refused object deleted", extra={"object": _ref(key)})
        return {key} if entry is not None else set()


def _read(resource: ApiResource, obj: Mapping[str, Any]) -> tuple[Resource | None, tuple[str, ...]]:
    """The object validated into a resource, or the problems that refuse it. The only ConfigMap
    watched is istiod's mesh config, read as istiod reads it."""
    if resource.kind == "ConfigMap":
        try:
            return mesh_resource(obj, ORIGIN), ()
        except BadInputError as exc:
            return None, tuple(exc.problems)
    result = load_object(_reduced(resource, obj), ORIGIN)
    if result.resources:
        return result.resources[0], ()
    return None, tuple(str(problem) for problem in result.problems) or (f"{ORIGIN}: not a kind meshctl reads",)


def _object_id(resource: ApiResource, obj: Mapping[str, Any]) -> ObjectId:
    metadata = obj.get("metadata") or {}
    return resource.kind, str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _state(accepted: Resource | None, refused: Rejection | None) -> tuple[str | None, Rejection | None]:
    """What an object contributes to an update: its accepted content, and its refusal."""
    return (accepted.revision if accepted is not None else None), refused


def _ref(key: ObjectId) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _reduced(resource: ApiResource, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as meshctl reads it: metadata without what the API server keeps for itself;
    for built-in kinds, only the fields meshctl's schema knows (Istio kinds stay whole: a field
    meshctl does not understand must be refused, not silently dropped)."""
    metadata = obj.get("metadata") or {}
    kept = {key: metadata[key] for key in _KEPT_METADATA if key in metadata}
    if _LAST_APPLIED in (kept.get("annotations") or {}):
        kept["annotations"] = {k: v for k, v in kept["annotations"].items() if k != _LAST_APPLIED}
    reduced: dict[str, Any] = {"apiVersion": obj.get("apiVersion") or resource.api_version(),
                               "kind": obj.get("kind") or resource.kind, "metadata": kept}
    info = KINDS.get((resource.group, resource.kind))
    if resource.group in _ISTIO_GROUPS or info is None:
        reduced.update((key, value) for key, value in obj.items() if key not in reduced)
        return reduced
    trim = _TRIMS.get(resource.kind)
    if trim is not None:
        obj = trim(dict(obj))  # first: pruning what is left is cheaper
    if info.body:
        reduced[info.body] = _pruned(obj.get(info.body), info.schema)
    else:
        reduced.update(_pruned({k: v for k, v in obj.items() if k in info.schema.fields}, info.schema))
    if info.status_schema is not None and "status" in obj:
        reduced["status"] = _pruned(obj["status"], info.status_schema)
    return reduced


def _pruned(value: Any, schema: Type) -> Any:
    """`value` without the fields `schema` does not declare (the API server's pruning)."""
    if isinstance(schema, Obj) and isinstance(value, dict):
        if schema.open:
            return value
        return {key: _pruned(item, schema.fields[key]) for key, item in value.items() if key in schema.fields}
    if isinstance(schema, List) and isinstance(value, list):
        return [_pruned(item, schema.item) for item in value]
    if isinstance(schema, Map) and isinstance(value, dict):
        return {key: _pruned(item, schema.value) for key, item in value.items()}
    return value


def _pod(pod: dict[str, Any]) -> dict[str, Any]:
    """What istiod's pod informer keeps: container names and ports (and an init container's
    restart policy, which makes it a native sidecar), the service account, the node; from the
    status, the phase, addresses and conditions."""
    spec = pod.get("spec") or {}
    reduced = {key: spec[key] for key in ("serviceAccountName", "serviceAccount", "nodeName", "hostname",
                                          "subdomain", "hostNetwork") if key in spec}
    for group in ("containers", "initContainers"):
        if group in spec:
            reduced[group] = [{key: c[key] for key in ("name", "ports", "restartPolicy") if key in c}
                              for c in spec[group]]
    status = pod.get("status") or {}
    kept_status = {key: status[key] for key in ("phase", "podIP", "podIPs", "hostIP") if key in status}
    if "conditions" in status:
        kept_status["conditions"] = [{"type": c.get("type"), "status": c.get("status")} for c in status["conditions"]]
    return dict(pod, spec=reduced, status=kept_status)


def _node(node: dict[str, Any]) -> dict[str, Any]:
    """A node is read for its topology labels only."""
    return dict(node, spec={})


_TRIMS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"Pod": _pod, "Node": _node}
