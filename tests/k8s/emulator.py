"""An in-process Kubernetes API server for meshctl's tests: kmock 0.8's emulator, completed.

kmock serves real HTTP on loopback, so the official `kubernetes` client is tested end to end,
from kubeconfig loading to response validation. Stock kmock 0.8 lacks what meshctl's
Kubernetes paths use (ecosystem.md §1.2), and this subclass adds exactly that:

- discovery under the trailing-slash paths the client asks for (`/api/`, `/apis/`, `/version/`),
  with every built-in resource declared and `/api` carrying the field the client requires;
- 201 on create, as the client keeps a create's body only for the status codes the API lists;
- `metadata.resourceVersion` (a counter), `uid`, `namespace` and `creationTimestamp` on write;
- `labelSelector` (equality and set-based) and `fieldSelector` (dotted paths) on list and watch;
- `timeoutSeconds` on watch, so a watch ends like it does against a real API server;
- create-only resources (TokenReview, SubjectAccessReview, ...) that are never stored, so each
  POST reaches the test's reaction instead of colliding with the previous one (409);
- the Namespace collection (`/api/v1/namespaces[/NAME]`), whose path kmock would read as a
  namespace prefix with no resource; seed it with `objects["v1/namespaces", None, "name"]`;
- the `exec` and `portforward` pod subresources over websocket, speaking the
  `v5.channel.k8s.io` / `v4.channel.k8s.io` channel protocols: `exec_handlers` decides what a
  command prints and returns, `forwards` maps a pod port to a real loopback TCP endpoint
  (for instance a real Envoy's admin port) and bytes are pumped both ways.

Seed objects with `emulator.objects["v1/pods", "ns", "name"] = {...}` or through the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import parsing as _parsing

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

ExecHandler = Callable[[list[str]], tuple[bytes | str, bytes | str, int]]
"""What a command run by `exec` does: argv in, (stdout, stderr, exit code) out."""

Send = Callable[[int, bytes], Awaitable[None]]


@attrs.define(kw_only=True)
class MeshEmulator(kmock.KubernetesEmulator):
    """kmock's in-memory Kubernetes API plus the behaviour meshctl depends on (module docstring).

    `exec_handlers[(namespace, pod, container)]` and `forwards[(namespace, pod, port)]` are the
    test tables for the two websocket subresources. `exec_frame_delay` spaces exec output
    frames in time, like a command that prints as it goes.
    """

    exec_handlers: dict[tuple[str, str, str], ExecHandler] = attrs.field(factory=dict)
    forwards: dict[tuple[str, str, int], tuple[str, int]] = attrs.field(factory=dict)
    exec_frame_delay: float = 0.0
    _revision: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated call
            warnings.simplefilter("ignore", DeprecationWarning)
            self.resources.load_bundled()
        self.fallback["get /version/"] << self._serve_server_version
        self.fallback["get /apis/"] << self._serve_apis
        self.fallback["get /api/"] << self._serve_api

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.subresource in ("exec", "portforward") and _is_websocket(request):
            pod = self._pod(request)
            if request.subresource == "exec":
                return await self._serve_exec(request, pod)
            return await self._serve_portforward(request)
        if request.resource is not None and request.resource.plural in CREATE_ONLY:
            response = await kmock.KubernetesScaffold._handle(self, request)
        else:
            self._stamp(request)
            response = await super()._handle(request)
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

    def _stamp(self, request: kmock.Request) -> None:
        """Fill the metadata a real API server owns, before kmock stores the object."""
        if request.action not in (kmock.action.CREATE, kmock.action.UPDATE):
            return
        if not isinstance(request.data, dict):
            return
        self._revision += 1
        metadata = request.data.setdefault("metadata", {})
        metadata["resourceVersion"] = str(self._revision)
        if request.action == kmock.action.CREATE:
            metadata.setdefault("uid", str(uuid.uuid4()))
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            metadata.setdefault("creationTimestamp", now)
            if request.namespace:
                metadata.setdefault("namespace", request.namespace)

    async def _serve_create(self, request: kmock.Request) -> Any:
        if request.resource is not None and request.resource.plural in CREATE_ONLY:
            raise kmock.KubernetesError(
                status=501,
                reason="NotImplemented",
                message=f"{request.resource.plural} are answered by a reaction in the test, "
                f"e.g. emulator['post {request.url.path}'] << {{...}}",
            )
        return await super()._serve_create(request)

    async def _serve_list(self, request: kmock.Request) -> Any:
        listing = await super()._serve_list(request)
        items = [item for item in listing["items"] if _selected(item, request.params)]
        return dict(listing, metadata={"resourceVersion": str(self._revision)}, items=items)

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        timeout = request.params.get("timeoutSeconds")
        deadline = loop.time() + float(timeout) if timeout else None
        events = super()._serve_watch(request)
        try:
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    event = await asyncio.wait_for(anext(events), remaining)
                except (StopAsyncIteration, TimeoutError):
                    return
                if not isinstance(event, dict) or _selected(
                    event.get("object", {}), request.params
                ):
                    yield event
        finally:
            await events.aclose()

    def _pod(self, request: kmock.Request) -> Mapping[str, Any]:
        """The pod a subresource request names, or the API server's 404."""
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesError(
                status=404,
                reason="NotFound",
                message=f'pods "{request.name}" not found',
                details={"name": request.name, "kind": "pods"},
            )
        return self.objects[key].raw

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


def _selected(obj: Mapping[str, Any], params: Mapping[str, str]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return label_selector_matches(
        params.get("labelSelector", ""), labels
    ) and field_selector_matches(params.get("fieldSelector", ""), obj)


_REQUIREMENT = re.compile(r"(?:[^,(]|\([^)]*\))+")
_SET_REQUIREMENT = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQUALITY_REQUIREMENT = re.compile(r"^\s*([^\s!=()]+)\s*(==|!=|=)\s*([^\s!=()]*)\s*$")


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether labels satisfy a Kubernetes label selector (`a=b,c!=d,e in (f,g),!h,i`)."""
    for requirement in _REQUIREMENT.findall(selector):
        text = requirement.strip()
        if not text:
            continue
        if match := _SET_REQUIREMENT.match(text):
            key, operator, values = match.groups()
            allowed = {value.strip() for value in values.split(",") if value.strip()}
            ok = labels.get(key) in allowed if operator == "in" else labels.get(key) not in allowed
        elif match := _EQUALITY_REQUIREMENT.match(text):
            key, operator, value = match.groups()
            ok = labels.get(key) == value if operator != "!=" else labels.get(key) != value
        elif text.startswith("!"):
            ok = text[1:].strip() not in labels
        else:
            ok = text in labels
        if not ok:
            return False
    return True


def field_selector_matches(selector: str, obj: Mapping[str, Any]) -> bool:
    """Whether an object satisfies a field selector of dotted paths (`status.phase=Running`)."""
    for requirement in filter(None, (part.strip() for part in selector.split(","))):
        match = _EQUALITY_REQUIREMENT.match(requirement)
        if match is None:
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message=f"invalid field selector: {requirement}"
            )
        path, operator, expected = match.groups()
        value: Any = obj
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        actual = "" if value is None else str(value)
        if (actual == expected) != (operator != "!="):
            return False
    return True


class BackgroundEmulator:
    """A MeshEmulator served on its own event loop in a thread, for synchronous client code.

    The `kubernetes` client used by meshctl is blocking; running the emulator on the test's
    loop would deadlock, so it gets a loop of its own. Unexpected server-side exceptions (not
    the Kubernetes errors it answers on purpose) are collected in `failures`.
    """

    def __init__(self) -> None:
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
            async with MeshEmulator() as emulator, kmock.Server(emulator) as server:
                self.emulator = emulator
                self.url = f"http://{server.host}:{server.port}"
                self._errors = emulator.errors
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            raise
