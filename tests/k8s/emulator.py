"""An in-process Kubernetes API server for meshctl's tests: kmock 0.8's scaffold with an API
server's state and behaviour.

kmock serves real HTTP on loopback, so the official `kubernetes` client is tested end to end,
from kubeconfig loading to response validation. kmock 0.8 itself lacks most of what meshctl's
Kubernetes paths depend on (ecosystem.md §1.2); this subclass keeps its HTTP server, discovery
scaffold and reaction DSL, and replaces its object store with one that behaves like the API
server (apistore.py):

- discovery under the trailing-slash paths the client asks for (`/api/`, `/apis/`, `/version/`),
  with every built-in resource declared, Istio's kinds at all their served versions, and the
  kinds of CRDs created through the API;
- one global `metadata.resourceVersion` stamped on every write, lists answering with the current
  one, compare-and-swap on writes that carry one (409 Conflict), PUT (replace) and merge PATCH;
- watches that resume from a resourceVersion, send BOOKMARK events (`bookmark_interval`),
  answer 410 Gone once the history is compacted (`cut_watches(gone=True)`), honour
  `timeoutSeconds`, and translate selector matches into ADDED/DELETED;
- `labelSelector` (equality and set-based) and `fieldSelector` (dotted paths) on list and watch;
- the Namespace collection (`/api/v1/namespaces[/NAME]`), whose path kmock would read as a
  namespace prefix with no resource;
- the `status` subresource: PATCH and PUT there change the status and nothing else, and do not
  bump `metadata.generation` (only a spec change does);
- CRDs with schemas: custom objects are validated structurally, unknown fields pruned or, with
  `fieldValidation=Strict`, refused (apischema.py); a CRD without a structural schema is refused;
- ServiceAccount tokens: TokenRequest issues them, TokenReview checks them (apitokens.py);
  other create-only reviews reach the test's reaction every time instead of colliding (409);
- 201 on create, as the client keeps a create's body only for the status codes the API lists;
- the `exec` and `portforward` pod subresources over websocket, speaking the
  `v5.channel.k8s.io` / `v4.channel.k8s.io` channel protocols: `exec_handlers` decides what a
  command prints and returns, `forwards` maps a pod port to a real loopback TCP endpoint
  (for instance a real Envoy's admin port) and bytes are pumped both ways.

Seed objects through the client or with `emulator.apply({...})` (from any thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp.web
import attrs
import kmock
from kmock._internal import parsing as _parsing
from apischema import crd_problems, validate
from apiselectors import selected
from apistore import ApiStore, Expired, ObjectKey, ResourceKey, StoreError, key_of, merge_patch, watch_event
from apitokens import TokenAuthority

T = TypeVar("T")


def _parse_path(path: str) -> Any:
    """kmock's path parser, reading `/api/v1/namespaces[/NAME]` as the Namespace resource."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        return _parsing.ParsedPath("", "v1", "namespaces", None, parts[3] if len(parts) == 4 else None, None)
    return _kmock_parse_path(path)


_kmock_parse_path = _parsing.parse_path
_parsing.parse_path = _parse_path

V4_CHANNEL = "v4.channel.k8s.io"
V5_CHANNEL = "v5.channel.k8s.io"
STDOUT, STDERR, STATUS = 1, 2, 3
EXEC_CHUNK = 16 * 1024  # several frames for a large output, as a real API server sends

CREATE_ONLY = frozenset(
    {
        "tokenreviews",
        "subjectaccessreviews",
        "selfsubjectaccessreviews",
        "localsubjectaccessreviews",
        "selfsubjectreviews",
    }
)
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
TOKEN_REQUEST = re.compile(r"/api/v1/namespaces/[^/]+/serviceaccounts/[^/]+/token")
_NETWORKING = ("v1", "v1beta1", "v1alpha3")
_SECURITY = ("v1", "v1beta1")
ISTIO_RESOURCES: dict[ResourceKey, tuple[str, tuple[str, ...]]] = {
    ("networking.istio.io", "virtualservices"): ("VirtualService", _NETWORKING),
    ("networking.istio.io", "destinationrules"): ("DestinationRule", _NETWORKING),
    ("networking.istio.io", "gateways"): ("Gateway", _NETWORKING),
    ("networking.istio.io", "serviceentries"): ("ServiceEntry", _NETWORKING),
    ("networking.istio.io", "sidecars"): ("Sidecar", _NETWORKING),
    ("networking.istio.io", "workloadentries"): ("WorkloadEntry", _NETWORKING),
    ("security.istio.io", "peerauthentications"): ("PeerAuthentication", _SECURITY),
    ("security.istio.io", "authorizationpolicies"): ("AuthorizationPolicy", _SECURITY),
    ("security.istio.io", "requestauthentications"): ("RequestAuthentication", _SECURITY),
}

ExecHandler = Callable[[list[str]], tuple[bytes | str, bytes | str, int]]
"""What a command run by `exec` does: argv in, (stdout, stderr, exit code) out."""

Send = Callable[[int, bytes], Awaitable[None]]


@attrs.define(kw_only=True)
class MeshEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes API scaffold with an API server's state and behaviour (module docstring).

    `store` holds the objects and the event history, `tokens` the ServiceAccount tokens issued;
    `bookmark_interval` (seconds, 0 for never) spaces the BOOKMARK events of watches that ask
    for them; `istio_resources` declares Istio's kinds up front, as if their CRDs (without
    schemas) were installed. `exec_handlers[(namespace, pod, container)]` and
    `forwards[(namespace, pod, port)]` are the test tables for the two websocket subresources;
    `exec_frame_delay` spaces exec output frames in time, like a command that prints as it goes.
    """

    exec_handlers: dict[tuple[str, str, str], ExecHandler] = attrs.field(factory=dict)
    forwards: dict[tuple[str, str, int], tuple[str, int]] = attrs.field(factory=dict)
    exec_frame_delay: float = 0.0
    bookmark_interval: float = 0.0
    istio_resources: bool = True
    store: ApiStore = attrs.field(factory=ApiStore)
    tokens: TokenAuthority = attrs.field(factory=TokenAuthority)
    schemas: dict[tuple[str, str, str], Mapping[str, Any]] = attrs.field(factory=dict)
    watches_served: int = attrs.field(default=0, init=False)
    _changed: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _cuts: int = attrs.field(default=0, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated call
            warnings.simplefilter("ignore", DeprecationWarning)
            self.resources.load_bundled()
        if self.istio_resources:
            for (group, plural), (kind, versions) in ISTIO_RESOURCES.items():
                for version in versions:
                    self._declare(group, version, plural, kind, namespaced=True)
        self.fallback["get /version/"] << self._serve_server_version
        self.fallback["get /apis/"] << self._serve_apis
        self.fallback["get /api/"] << self._serve_api
        self.fallback["post", TOKEN_REQUEST] << self._serve_token_request
        self.store.listeners.append(self._wake)

    # -- what tests call (from any thread) ------------------------------------------------------

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create the object, or replace it if it exists (no resourceVersion check)."""
        resource = _resource_of(obj, self.resources)
        return self._on_loop(lambda: self._put(resource, dict(obj)))

    def remove(self, api_version: str, plural: str, namespace: str, name: str) -> None:
        group = api_version.rpartition("/")[0]
        self._on_loop(lambda: self.store.delete((group, plural), (namespace, name)))

    def cut_watches(self, *, gone: bool = False) -> None:
        """End every open watch, as an API server restart does; with `gone`, each first gets an
        ERROR 410 and the history is compacted, so resuming from any earlier resourceVersion
        is refused and clients must list again."""

        def cut() -> None:
            if gone:
                self.store.compact()
            self._cuts += 1
            self._wake()

        self._on_loop(cut)

    def _on_loop(self, action: Callable[[], T]) -> T:
        """Run a store operation on the emulator's loop: writes wake watches, which live there."""
        loop = self._loop
        if loop is None or _running_loop() is loop:
            return action()

        async def run() -> T:
            return action()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(10)

    def _put(self, resource: ResourceKey, obj: dict[str, Any]) -> dict[str, Any]:
        key = key_of(obj)
        if self.store.get(resource, key) is None:
            return self.store.create(resource, obj)
        obj.setdefault("metadata", {}).pop("resourceVersion", None)
        return self.store.update(resource, key, lambda _: obj)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- request handling -----------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        self._loop = asyncio.get_running_loop()
        if request.subresource in ("exec", "portforward") and _is_websocket(request):
            pod = self._pod(request)
            if request.subresource == "exec":
                return await self._serve_exec(request, pod)
            return await self._serve_portforward(request)
        if request.resource is not None and request.method == kmock.method.PUT and request.name:
            return aiohttp.web.json_response(self._serve_replace(request))
        # Straight to the reactions and the fallbacks below: kmock's own object store is unused.
        response = await kmock.KubernetesScaffold._handle(self, request)
        if request.method == kmock.method.POST and response.status == 200 and not response.prepared:
            response.set_status(201)
        return response

    async def _serve_api(self, request: kmock.Request) -> Any:
        """`/api` with the field the client's pydantic model requires."""
        versions = await super()._serve_api(request)
        address = f"{request.url.host}:{request.url.port}"
        return dict(
            versions,
            serverAddressByClientCIDRs=[{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        )

    async def _serve_version(self, request: kmock.Request) -> Any:
        """kmock names the core group version `/v1`; kubectl skips a list not named `v1`."""
        listing = await super()._serve_version(request)
        return dict(listing, groupVersion=listing["groupVersion"].lstrip("/"))

    def _info(self, request: kmock.Request) -> kmock.ResourceInfo:
        """The declared resource a request is for, or the API server's 404 for an unknown one."""
        resource = request.resource
        assert resource is not None
        name = f"{resource.group}/{resource.version}/{resource.plural}".lstrip("/")
        if name not in self.resources:  # (indexing would declare it, as a defaultdict does)
            raise kmock.KubernetesError(
                status=404, reason="NotFound", message="the server could not find the requested resource"
            )
        return self.resources[name]

    def _key(self, request: kmock.Request) -> tuple[ResourceKey, ObjectKey]:
        assert request.resource is not None and request.name is not None
        return (request.resource.group, request.resource.plural), (request.namespace or "", request.name)

    def _shown(self, obj: Mapping[str, Any], request: kmock.Request) -> dict[str, Any]:
        """An object as the requested version shows it (one storage, several served versions)."""
        assert request.resource is not None
        api_version = "/".join(filter(None, (request.resource.group, request.resource.version)))
        return obj if obj.get("apiVersion") == api_version else dict(obj, apiVersion=api_version)

    async def _serve_list(self, request: kmock.Request) -> Any:
        info = self._info(request)
        assert request.resource is not None
        with _api_errors():
            items = [
                self._shown(obj, request)
                for obj in self.store.list((request.resource.group, request.resource.plural), request.namespace)
                if selected(obj, request.params)
            ]
        return {
            "apiVersion": "/".join(filter(None, (request.resource.group, request.resource.version))),
            "kind": f"{info.kind}List",
            "metadata": {"resourceVersion": str(self.store.revision)},
            "items": items,
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        """Events after the requested resourceVersion (or the current objects as ADDED, then
        what follows), with bookmarks, timeoutSeconds, 410 Gone and selector translation."""
        info = self._info(request)
        assert request.resource is not None
        resource = (request.resource.group, request.resource.plural)
        api_version = "/".join(filter(None, (request.resource.group, request.resource.version)))
        params = request.params
        loop = asyncio.get_running_loop()
        timeout = params.get("timeoutSeconds")
        deadline = loop.time() + float(timeout) if timeout else None
        bookmarks = params.get("allowWatchBookmarks") == "true" and self.bookmark_interval > 0
        epoch = self._cuts
        self.watches_served += 1

        def passes(obj: Mapping[str, Any]) -> bool:
            namespace = (obj.get("metadata") or {}).get("namespace") or ""
            return (request.namespace is None or namespace == request.namespace) and selected(obj, params)

        yield b""  # send the headers now: a watch with nothing to say is still open
        since = params.get("resourceVersion") or "0"
        with _api_errors():
            if since == "0":
                cursor = self.store.revision
                current = [obj for obj in self.store.list(resource, request.namespace) if passes(obj)]
            else:
                cursor, current = int(since), []
        for obj in current:
            yield {"type": "ADDED", "object": self._shown(obj, request)}
        next_bookmark = loop.time() + self.bookmark_interval
        while True:
            changed = self._changed
            if epoch != self._cuts:
                if self.store.floor > cursor:
                    yield _gone(cursor, self.store.floor)
                return
            try:
                events = list(self.store.events_after(cursor, resource))
            except Expired as exc:
                yield _gone(cursor, self.store.floor, str(exc))
                return
            cursor = self.store.revision
            for event in events:
                shown = watch_event(event, passes)
                if shown is not None:
                    yield dict(shown, object=self._shown(shown["object"], request))
            if events:
                continue
            waits = [t - loop.time() for t in (deadline, next_bookmark if bookmarks else None) if t is not None]
            if deadline is not None and deadline <= loop.time():
                return
            try:
                await asyncio.wait_for(changed.wait(), max(0.0, min(waits)) if waits else None)
            except TimeoutError:
                if bookmarks and loop.time() >= next_bookmark:
                    next_bookmark = loop.time() + self.bookmark_interval
                    yield {"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": api_version,
                                                          "metadata": {"resourceVersion": str(cursor)}}}

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        self._info(request)
        resource, key = self._key(request)
        found = self.store.get(resource, key)
        if found is None:
            raise _not_found(resource[1], key[1])
        return self._shown(found, request)

    async def _serve_create(self, request: kmock.Request) -> Any:
        assert request.resource is not None
        plural = request.resource.plural
        if plural == "tokenreviews":
            return self.tokens.review(request.data or {})
        if plural in CREATE_ONLY:
            raise kmock.KubernetesError(
                status=501,
                reason="NotImplemented",
                message=f"{plural} are answered by a reaction in the test, "
                f"e.g. emulator['post {request.url.path}'] << {{...}}",
            )
        info = self._info(request)
        obj = self._checked(request, dict(request.data or {}), info)
        with _api_errors():
            created = self.store.create((request.resource.group, plural), obj)
        self._after_write(request.resource.group, plural, created)
        return self._shown(created, request)

    async def _serve_update(self, request: kmock.Request) -> Any:
        """PATCH (a JSON merge patch). Through the status subresource only the status changes,
        as the API server resets every other field of the patched object (spec, labels)."""
        info = self._info(request)
        resource, key = self._key(request)
        patch = request.data or {}

        def change(current: dict[str, Any]) -> dict[str, Any]:
            patched = merge_patch(current, patch)
            if request.subresource == "status":
                patched = _status_only(current, patched)
            return self._checked(request, patched, info)

        with _api_errors():
            updated = self.store.update(resource, key, change)
        self._after_write(resource[0], resource[1], updated)
        return self._shown(updated, request)

    def _serve_replace(self, request: kmock.Request) -> Any:
        """PUT: the body replaces the object (through the status subresource, its status
        only); its resourceVersion, if any, must be current."""
        info = self._info(request)
        resource, key = self._key(request)
        body = self._checked(request, dict(request.data or {}), info)

        def change(current: dict[str, Any]) -> dict[str, Any]:
            return _status_only(current, body) if request.subresource == "status" else body

        with _api_errors():
            updated = self.store.update(resource, key, change)
        self._after_write(resource[0], resource[1], updated)
        return self._shown(updated, request)

    async def _serve_delete(self, request: kmock.Request) -> Any:
        self._info(request)
        resource, key = self._key(request)
        expected = ((request.data or {}).get("preconditions") or {}).get("resourceVersion")
        with _api_errors():
            gone = self.store.delete(resource, key, expected)
        if resource == CRDS:
            self._forget_crd(gone)
        return self._shown(gone, request)

    async def _serve_token_request(self, request: kmock.Request) -> Any:
        namespace, name = request.namespace or "", request.name or ""
        if self.store.get(("", "serviceaccounts"), (namespace, name)) is None:
            raise _not_found("serviceaccounts", name)
        return self.tokens.token_request(namespace, name, request.data or {})

    def _checked(self, request: kmock.Request, obj: dict[str, Any], info: kmock.ResourceInfo) -> dict[str, Any]:
        """Fill what the API server owns (apiVersion, kind, namespace), then validate against
        the CRD's schema if the kind has one; 422 with every problem otherwise."""
        assert request.resource is not None
        group, version, plural = request.resource.group, request.resource.version, request.resource.plural
        obj["apiVersion"] = "/".join(filter(None, (group, version)))
        obj["kind"] = info.kind
        metadata = obj.setdefault("metadata", {})
        if info.namespaced:
            metadata["namespace"] = request.namespace or metadata.get("namespace") or "default"
        schema = self.schemas.get((group, version, plural))
        problems: list[str] = []
        if schema is not None:
            body = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind", "metadata")}
            strict = request.params.get("fieldValidation") == "Strict"
            pruned, problems = validate(body, schema, strict=strict)
            obj = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": metadata, **pruned}
        if (group, plural) == CRDS:
            problems += crd_problems(obj)
        if problems:
            name = metadata.get("name", "")
            raise kmock.KubernetesError(
                status=422, reason="Invalid",
                message=f'{info.kind}.{group} "{name}" is invalid: ' + "; ".join(problems),
                details={"name": name, "group": group, "kind": info.kind,
                         "causes": [{"reason": "FieldValueInvalid", "message": p} for p in problems]},
            )
        return obj

    def _after_write(self, group: str, plural: str, obj: dict[str, Any]) -> None:
        if (group, plural) == CRDS:
            self._learn_crd(obj)

    def _learn_crd(self, crd: dict[str, Any]) -> None:
        """Serve a CRD's kind at each served version, validated by its schema, and mark the CRD
        Established as the API server does."""
        spec = crd["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            if version.get("served", True):
                self._declare(spec["group"], version["name"], names["plural"], names["kind"],
                              namespaced=spec.get("scope") == "Namespaced", shortnames=names.get("shortNames", ()))
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema is not None:
                    self.schemas[spec["group"], version["name"], names["plural"]] = schema
        crd["status"] = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
            "conditions": [{"type": kind, "status": "True", "reason": reason}
                           for kind, reason in (("NamesAccepted", "NoConflicts"), ("Established", "InitialNamesAccepted"))],
        }

    def _forget_crd(self, crd: dict[str, Any]) -> None:
        """Deleting a CRD deletes its objects and stops serving its kind."""
        spec = crd["spec"]
        plural = spec["names"]["plural"]
        for obj in self.store.list((spec["group"], plural)):
            self.store.delete((spec["group"], plural), key_of(obj))
        for version in spec["versions"]:
            self.schemas.pop((spec["group"], version["name"], plural), None)
            name = f"{spec['group']}/{version['name']}/{plural}"
            if name in self.resources:
                del self.resources[name]

    def _declare(self, group: str, version: str, plural: str, kind: str, *, namespaced: bool,
                 shortnames: Iterable[str] = ()) -> None:
        self.resources[f"{group}/{version}/{plural}"] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, singular=kind.lower(), shortnames=set(shortnames),
            verbs={"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"},
        )

    def _pod(self, request: kmock.Request) -> Mapping[str, Any]:
        """The pod a subresource request names, or the API server's 404."""
        pod = self.store.get(("", "pods"), (request.namespace or "", request.name or ""))
        if pod is None:
            raise _not_found("pods", request.name or "")
        return pod

    async def _serve_exec(
        self, request: kmock.Request, pod: Mapping[str, Any]
    ) -> aiohttp.web.StreamResponse:
        container = _exec_container(request, pod)
        argv = request.url.query.getall("command", [])
        ws = aiohttp.web.WebSocketResponse(protocols=(V5_CHANNEL, V4_CHANNEL))
        await ws.prepare(request._raw_request)
        handler = self.exec_handlers.get((request.namespace, request.name, container))
        if handler is None:
            status = _status_failure(
                "InternalError",
                f'error executing command in container: exec: "{argv[0] if argv else ""}": '
                "executable file not found in $PATH",
            )
        else:
            stdout, stderr, code = handler(argv)
            for channel, data in ((STDOUT, _as_bytes(stdout)), (STDERR, _as_bytes(stderr))):
                for start in range(0, len(data), EXEC_CHUNK):
                    await ws.send_bytes(bytes([channel]) + data[start : start + EXEC_CHUNK])
                    await asyncio.sleep(self.exec_frame_delay)
            status = _exit_status(argv, code)
        await ws.send_bytes(bytes([STATUS]) + json.dumps(status).encode())
        await ws.close()
        return ws

    async def _serve_portforward(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        ports = [
            int(p) for value in request.url.query.getall("ports", []) for p in value.split(",")
        ]
        if not ports:
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message="query parameter ports is required"
            )
        ws = aiohttp.web.WebSocketResponse(protocols=(V4_CHANNEL,))
        await ws.prepare(request._raw_request)
        lock = asyncio.Lock()

        async def send(channel: int, payload: bytes) -> None:
            async with lock:
                await ws.send_bytes(bytes([channel]) + payload)

        for index, port in enumerate(ports):
            await send(2 * index, port.to_bytes(2, "little"))
            await send(2 * index + 1, port.to_bytes(2, "little"))
        writers: dict[int, asyncio.StreamWriter] = {}
        pumps: list[asyncio.Task[None]] = []
        for index, port in enumerate(ports):
            target = self.forwards.get((request.namespace, request.name, port))
            try:
                if target is None:
                    raise ConnectionRefusedError(f"dial tcp 127.0.0.1:{port}: connection refused")
                reader, writer = await asyncio.open_connection(*target)
            except OSError as exc:
                message = f"error forwarding port {port} to pod {request.name}: {exc}"
                await send(2 * index + 1, message.encode())
                continue
            writers[2 * index] = writer
            pumps.append(asyncio.create_task(_pump(reader, 2 * index, send)))
        closer = asyncio.create_task(_close_after(pumps, ws)) if pumps else None
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY and message.data:
                    await _deliver(writers.get(message.data[0]), message.data[1:])
        finally:
            for writer in writers.values():
                writer.close()
            tasks = [*pumps, *([closer] if closer else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return ws



def _status_only(current: dict[str, Any], written: Mapping[str, Any]) -> dict[str, Any]:
    """`current` with the status of `written` (and the resourceVersion it was written against,
    for the compare-and-swap): what a write through the status subresource may change."""
    out = dict(current)
    out["metadata"] = dict(current.get("metadata") or {})
    version = (written.get("metadata") or {}).get("resourceVersion")
    if version:
        out["metadata"]["resourceVersion"] = version
    else:
        out["metadata"].pop("resourceVersion", None)
    if "status" in written:
        out["status"] = written["status"]
    else:
        out.pop("status", None)
    return out


def _is_websocket(request: kmock.Request) -> bool:
    headers = {key.lower(): value for key, value in request.headers.items()}
    return headers.get("upgrade", "").lower() == "websocket"


def _exec_container(request: kmock.Request, pod: Mapping[str, Any]) -> str:
    """The container an exec targets, with the API server's 400s for a missing or wrong one."""
    names = [c.get("name") for c in pod.get("spec", {}).get("containers", [])]
    container = request.url.query.get("container")
    if container is None and len(names) == 1:
        return names[0]
    if container is None:
        message = (
            f"a container name must be specified for pod {request.name}, choose one of: {names}"
        )
    elif container not in names:
        message = f"container {container} is not valid for pod {request.name}"
    else:
        return container
    raise kmock.KubernetesError(status=400, reason="BadRequest", message=message)


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _status_failure(reason: str, message: str, **details: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "metadata": {},
        "status": "Failure",
        "reason": reason,
        "message": message,
    }
    if details:
        status["details"] = details
    return status


def _exit_status(argv: list[str], code: int) -> dict[str, Any]:
    """The Status a real API server sends on the error channel when a command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return _status_failure(
        "NonZeroExitCode",
        f"command terminated with non-zero exit code: error executing command {argv}, "
        f"exit code {code}",
        causes=[{"reason": "ExitCode", "message": str(code)}],
    )


async def _pump(reader: asyncio.StreamReader, channel: int, send: Send) -> None:
    while chunk := await reader.read(64 * 1024):
        await send(channel, chunk)


async def _close_after(pumps: list[asyncio.Task[None]], ws: aiohttp.web.WebSocketResponse) -> None:
    """Close the websocket once every target has closed, as the API server does."""
    await asyncio.gather(*pumps, return_exceptions=True)
    await ws.close()


async def _deliver(writer: asyncio.StreamWriter | None, data: bytes) -> None:
    if writer is None or writer.is_closing():
        return
    writer.write(data)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resource_of(obj: Mapping[str, Any], resources: kmock.KubernetesEmulator.ResourcesArray) -> ResourceKey:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    for resource in resources:
        if resource.group == group and resources[resource].kind == obj.get("kind"):
            return group, str(resource.plural)
    raise KeyError(f"no resource serves {obj.get('kind')} in {obj.get('apiVersion')}")


def _not_found(plural: str, name: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=404, reason="NotFound", message=f'{plural} "{name}" not found',
                                 details={"name": name, "kind": plural})


def _gone(since: int, floor: int, message: str = "") -> dict[str, Any]:
    """The ERROR event a watch gets when its resourceVersion has been compacted away."""
    return {"type": "ERROR", "object": {
        "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": 410, "reason": "Expired",
        "message": message or f"too old resource version: {since} ({floor + 1})",
    }}


@contextlib.contextmanager
def _api_errors() -> Iterator[None]:
    """The store's refusals as the API server's answers."""
    try:
        yield
    except StoreError as exc:
        raise kmock.KubernetesError(status=exc.status, reason=exc.reason, message=str(exc)) from None
    except ValueError as exc:
        raise kmock.KubernetesError(status=400, reason="BadRequest", message=str(exc)) from None


def write_kubeconfig(url: str, path: Path, *, token: str = "admin") -> str:
    """A kubeconfig whose one (current) context reaches the emulator at `url`; its path."""
    import yaml

    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "admin"}}],
    }))
    return str(path)


class BackgroundEmulator:
    """A MeshEmulator served on its own event loop in a thread, for synchronous client code.

    The `kubernetes` client used by meshctl is blocking; running the emulator on the test's
    loop would deadlock, so it gets a loop of its own. Unexpected server-side exceptions (not
    the Kubernetes errors it answers on purpose) are collected in `failures`.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._errors: list[Exception] = []
        self._startup_error: BaseException | None = None
        self.emulator: MeshEmulator | None = None
        self.url = ""

    @property
    def failures(self) -> list[Exception]:
        return [exc for exc in self._errors if not isinstance(exc, kmock.KubernetesError)]

    def __enter__(self) -> BackgroundEmulator:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Kubernetes emulator did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError("the Kubernetes emulator failed to start") from self._startup_error
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with MeshEmulator(**self.options) as emulator, kmock.Server(emulator) as server:
                emulator._loop = self._loop
                self.emulator = emulator
                self.url = f"http://{server.host}:{server.port}"
                self._errors = emulator.errors
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            raise
