"""The emulated API server's state: objects, one global resourceVersion, and the event history.

What a real API server (etcd behind it) guarantees, and meshctl's watches rely on:

- every write (create, update, delete) gets the next value of one cluster-wide counter as its
  `metadata.resourceVersion`, and a list answers with the counter's value at that moment;
- a watch started from a resourceVersion replays every change after it, in order; once the
  history has been compacted past that point the watch answers 410 Gone (`Expired`), and the
  client must list again;
- a write whose body carries a resourceVersion is a compare-and-swap: it fails with 409
  Conflict when the object has changed since (optimistic concurrency; leader election uses it);
- a watch with a selector sees an object that starts matching as ADDED and one that stops
  matching as DELETED (the API server's watch cache does this translation).

Objects are stored once per (group, plural), whatever version they were written through, so
`networking.istio.io/v1beta1` and `/v1` show the same VirtualServices, as with a CRD that
serves several versions. The store is plain synchronous code: the emulator calls it from its
event loop, which makes every write atomic with respect to the watches it wakes.
"""

from __future__ import annotations

import copy
import datetime
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ResourceKey = tuple[str, str]
"""(group, plural): `("", "pods")`, `("networking.istio.io", "virtualservices")`."""

ObjectKey = tuple[str, str]
"""(namespace, name); the namespace is "" for cluster-scoped objects."""

Object = dict[str, Any]


class StoreError(Exception):
    """A write or a watch the API server refuses; `status` and `reason` as it answers them."""

    status = 500
    reason = "InternalError"


class NotFound(StoreError):
    status, reason = 404, "NotFound"


class AlreadyExists(StoreError):
    status, reason = 409, "AlreadyExists"


class Conflict(StoreError):
    status, reason = 409, "Conflict"


class Expired(StoreError):
    status, reason = 410, "Expired"


@dataclass(frozen=True, slots=True)
class Event:
    """One change, as the history keeps it: the object after (before, for DELETED, but with
    the deletion's resourceVersion) and the object before, which selector translation needs."""

    revision: int
    resource: ResourceKey
    type: str
    object: Object
    previous: Object | None


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else
    (lists included) replaces. The API server applies strategic merge patches with merge keys
    for some lists; tests patch whole lists, which both agree on."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


class ApiStore:
    """Objects by resource and key, the global revision, and the last `history_limit` events."""

    def __init__(self, history_limit: int = 100_000) -> None:
        self.revision = 0
        self.floor = 0
        self.objects: dict[ResourceKey, dict[ObjectKey, Object]] = {}
        self.history: deque[Event] = deque()
        self.history_limit = history_limit
        self.listeners: list[Callable[[], None]] = []

    def get(self, resource: ResourceKey, key: ObjectKey) -> Object | None:
        return self.objects.get(resource, {}).get(key)

    def list(self, resource: ResourceKey, namespace: str | None = None) -> list[Object]:
        """Current objects of a resource (in one namespace, or all), in key order."""
        stored = self.objects.get(resource, {})
        return [stored[key] for key in sorted(stored) if namespace is None or key[0] == namespace]

    def create(self, resource: ResourceKey, obj: Mapping[str, Any]) -> Object:
        key = key_of(obj)
        if not key[1]:
            raise StoreError("metadata.name is required")
        if key in self.objects.get(resource, {}):
            raise AlreadyExists(f'{resource[1]} "{key[1]}" already exists')
        stored = copy.deepcopy(dict(obj))
        metadata = stored.setdefault("metadata", {})
        metadata.pop("resourceVersion", None)
        metadata.setdefault("uid", str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", _now())
        metadata.setdefault("generation", 1)
        return self._write(resource, key, "ADDED", stored, None)

    def update(self, resource: ResourceKey, key: ObjectKey, change: Callable[[Object], Object]) -> Object:
        """Replace an object with `change(current)`. A resourceVersion in the result must equal
        the current one (compare-and-swap); none means "whatever is there now"."""
        current = self.get(resource, key)
        if current is None:
            raise NotFound(f'{resource[1]} "{key[1]}" not found')
        updated = change(copy.deepcopy(current))
        metadata = updated.setdefault("metadata", {})
        expected = metadata.get("resourceVersion")
        if expected and expected != current["metadata"]["resourceVersion"]:
            raise Conflict(
                f'Operation cannot be fulfilled on {resource[1]} "{key[1]}": the object has been '
                "modified; please apply your changes to the latest version and try again"
            )
        for owned in ("uid", "creationTimestamp", "name", "namespace"):
            if owned in current["metadata"]:
                metadata[owned] = current["metadata"][owned]
        # The generation is the server's: kept, and bumped by a change of the spec only.
        generation = int(current["metadata"].get("generation", 1))
        metadata["generation"] = generation + 1 if updated.get("spec") != current.get("spec") else generation
        return self._write(resource, key, "MODIFIED", updated, current)

    def delete(self, resource: ResourceKey, key: ObjectKey, expected: str | None = None) -> Object:
        current = self.get(resource, key)
        if current is None:
            raise NotFound(f'{resource[1]} "{key[1]}" not found')
        if expected and expected != current["metadata"]["resourceVersion"]:
            raise Conflict(f'the resourceVersion precondition failed for {resource[1]} "{key[1]}"')
        gone = copy.deepcopy(current)
        return self._write(resource, key, "DELETED", gone, current)

    def _write(self, resource: ResourceKey, key: ObjectKey, kind: str, obj: Object, previous: Object | None) -> Object:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        stored = self.objects.setdefault(resource, {})
        if kind == "DELETED":
            del stored[key]
        else:
            stored[key] = obj
        self.history.append(Event(self.revision, resource, kind, obj, previous))
        while len(self.history) > self.history_limit:
            self.floor = self.history.popleft().revision
        for listener in self.listeners:
            listener()
        return obj

    def events_after(self, revision: int, resource: ResourceKey) -> Iterator[Event]:
        """The changes of one resource after `revision`; Expired once the history no longer
        reaches back that far (a client must list again)."""
        if revision < self.floor:
            raise Expired(f"too old resource version: {revision} ({self.floor + 1})")
        for event in self.history:
            if event.revision > revision and event.resource == resource:
                yield event

    def compact(self) -> None:
        """Forget the whole history, as etcd compaction does: every watch resuming from a
        resourceVersion older than now gets 410 Gone."""
        self.history.clear()
        self.floor = self.revision


def watch_event(event: Event, selected: Callable[[Mapping[str, Any]], bool]) -> dict[str, Any] | None:
    """The event a watch with a selector sees, or None: an object that starts matching arrives
    as ADDED, one that stops matching leaves as DELETED (its last matching state, stamped with
    the change's resourceVersion), as the API server's watch cache translates them."""
    now = event.type != "DELETED" and selected(event.object)
    before = event.previous is not None and selected(event.previous)
    if now and before:
        return {"type": "MODIFIED", "object": event.object}
    if now:
        return {"type": "ADDED", "object": event.object}
    if before:
        assert event.previous is not None
        gone = copy.deepcopy(event.previous) if event.type != "DELETED" else event.object
        gone["metadata"]["resourceVersion"] = str(event.revision)
        return {"type": "DELETED", "object": gone}
    return None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
