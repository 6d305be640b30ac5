"""List and watch one kind of object, as client-go's reflector does.

A `Reflector` keeps a consumer current with the API server's objects of one resource:

- it lists (in pages), hands over the complete state (`Listed`), and watches from the list's
  resourceVersion, handing over each change (`Changed`);
- a watch that ends (the server's `timeoutSeconds`, a cut connection) resumes from the last
  resourceVersion seen, which bookmarks keep moving while nothing changes, so nothing is
  missed and nothing is replayed;
- 410 Gone (the history was compacted past that point) makes it list again: the consumer gets
  a fresh complete state, from which it must work out what was deleted meanwhile;
- a resource is read at the newest of its versions the API server serves; one it serves at none
  (404: a CRD not installed yet) counts as empty and is asked for again every `missing_retry`
  seconds; any other failure (refused connection, 5xx, 403) is retried after an exponential,
  jittered backoff, resuming where it stopped.

Objects are handed over as the API server's JSON (dicts), never turned into the client's
models: the consumer validates them with meshctl's own schemas, and building pydantic models
for thousands of pods would cost more than everything else. A reflector runs in a thread of
its own (the client is blocking); `stop` interrupts even a watch waiting on a silent stream.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshctl.kube.resources import ApiResource
from meshctl.kube.rest import ApiError, call

if TYPE_CHECKING:
    import urllib3

    from meshctl.kube.client import KubeClient

__all__ = ["Backoff", "Changed", "Listed", "Reflector"]

log = logging.getLogger("meshctl.kube")

PAGE_SIZE = 500
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Listed:
    """Every object of the resource at `revision`: the consumer replaces what it held."""

    objects: tuple[dict[str, Any], ...]
    revision: str
    installed: bool = True


@dataclass(frozen=True, slots=True)
class Changed:
    """One change: `type` is ADDED, MODIFIED or DELETED (then `object` is its last state)."""

    type: str
    object: dict[str, Any]


@dataclass(slots=True)
class Backoff:
    """Exponential delays with full jitter, capped; `reset` after a success."""

    initial: float = 0.5
    ceiling: float = 30.0
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        delay = min(self.ceiling, self.initial * 2**self.failures)
        self.failures += 1
        return self.rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.failures = 0


Sink = Callable[[ApiResource, "Listed | Changed"], None]


class Reflector:
    """Lists and watches `resource` on `client` until stopped, handing everything to `sink`
    (called from the reflector's thread)."""

    def __init__(
        self,
        client: KubeClient,
        resource: ApiResource,
        sink: Sink,
        *,
        watch_timeout: float = 300.0,
        missing_retry: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.sink = sink
        self.watch_timeout = watch_timeout
        self.missing_retry = missing_retry
        self.backoff = backoff or Backoff()
        self.revision = ""
        self.lists = 0
        self.missing = False
        self.version = resource.version
        self._stopping = threading.Event()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._api = client.new_api_client()  # its own connection: a watch holds one for minutes

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"meshctl watch {self.resource}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop, interrupting a request in flight, and wait for the thread to end."""
        self._stopping.set()
        with self._lock:
            response = self._response
        if response is not None:
            _interrupt(response)
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """List, then watch and resume, until stopped; never raises."""
        while not self._stopping.is_set():
            try:
                if not self.revision:
                    self._list()
                self._watch()
                self.backoff.reset()
            except ApiError as exc:
                self._failed(exc)
            except Exception as exc:  # refused, reset, timed out, a half-written line...
                if self._stopping.is_set():
                    return
                self._retry_later(f"{type(exc).__name__}: {exc}")

    def _failed(self, exc: ApiError) -> None:
        if exc.status == 410:
            log.info("watch expired, listing again", extra={"resource": str(self.resource), "reason": str(exc)})
            self.revision = ""
        elif exc.status == 404 and self.version != self.resource.versions[-1]:
            self.version = self.resource.versions[self.resource.versions.index(self.version) + 1]
            self.revision = ""
        elif exc.status == 404:
            self.version = self.resource.version
            if not self.missing:
                log.info("resource not served (CRD not installed?); treating it as empty",
                         extra={"resource": str(self.resource)})
                self.sink(self.resource, Listed((), "", installed=False))
            self.missing = True
            self.revision = ""
            self._stopping.wait(self.missing_retry)
        else:
            self._retry_later(f"HTTP {exc.status}: {exc}")

    def _retry_later(self, reason: str) -> None:
        delay = self.backoff.next()
        level = logging.WARNING if self.backoff.failures > 1 else logging.INFO
        log.log(level, "list/watch failed, retrying in %.1fs: %s", delay, reason,
                extra={"resource": str(self.resource)})
        self._stopping.wait(delay)

    def _list(self) -> None:
        items: list[dict[str, Any]] = []
        page = ""
        while True:
            query = {"limit": str(PAGE_SIZE)}
            if page:
                query["continue"] = page
            document = json.loads(self._request(query, self.client.timeout).data)
            items.extend(_completed(item, self.resource, self.version) for item in document.get("items") or ())
            metadata = document.get("metadata") or {}
            page = metadata.get("continue") or ""
            if not page:
                break
        self.revision = str(metadata.get("resourceVersion") or "")
        self.lists += 1
        if self.missing:
            log.info("resource served now", extra={"resource": str(self.resource)})
            self.missing = False
        self.sink(self.resource, Listed(tuple(items), self.revision))

    def _watch(self) -> None:
        """One watch request, from `revision` until the server ends it."""
        timeout = int(self.watch_timeout * (1 + random.random()))  # spread the reconnects
        query = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": self.revision,
                 "timeoutSeconds": str(timeout)}
        response = self._request(query, (self.client.timeout, timeout + self.client.timeout))
        try:
            for line in _lines(response):
                if self._stopping.is_set():
                    return
                self._event(json.loads(line))
        finally:
            with self._lock:
                self._response = None
            response.release_conn()

    def _event(self, event: Mapping[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        revision = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind == "ERROR":
            raise ApiError(int(obj.get("code") or 500), str(obj.get("message") or obj.get("reason") or "watch error"))
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.sink(self.resource, Changed(str(kind), _completed(dict(obj), self.resource, self.version)))
        if revision:
            self.revision = revision  # BOOKMARK events only move this

    def _request(self, query: dict[str, str], timeout: float | tuple[float, float]) -> urllib3.BaseHTTPResponse:
        """GET the resource's collection; the raw response, for the caller to read."""
        if self.resource.field_selector:
            query["fieldSelector"] = self.resource.field_selector
        response = call(self._api, "GET", self.resource.path(self.version), query=query, timeout=timeout)
        with self._lock:
            self._response = response
        if self._stopping.is_set():
            _interrupt(response)
        return response


def _completed(obj: dict[str, Any], resource: ApiResource, version: str) -> dict[str, Any]:
    """List items come without apiVersion and kind; every consumer wants them."""
    obj.setdefault("apiVersion", resource.api_version(version))
    obj.setdefault("kind", resource.kind)
    return obj


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The newline-separated JSON documents of a watch response, as they arrive."""
    pending = b""
    for chunk in response.stream(_CHUNK, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())
    if pending.strip():
        yield pending


def _interrupt(response: urllib3.BaseHTTPResponse) -> None:
    """Unblock a thread reading `response` (urllib3's shutdown), whatever state it is in."""
    shutdown = getattr(response, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        else:
            response.close()
    except Exception:  # already closed, or never connected: nothing to interrupt
        log.debug("interrupting a response failed", exc_info=True)
