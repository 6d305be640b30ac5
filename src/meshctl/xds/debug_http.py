"""The HTTP debug and operations server (istiod's port 15014 counterpart).

A minimal HTTP/1.1 GET server on asyncio streams: serve needs five read-only endpoints (the
agent one, its readiness probe), and a web framework would cost start-up time and a dependency
for nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from meshctl.errors import GenerationError, UnknownProxyError
from meshctl.xds.cache import NotReadyError, SnapshotCache

__all__ = ["DebugHttpServer", "Handler", "HttpGetServer", "Response", "text"]

log = logging.getLogger("meshctl.xds.http")

Response = tuple[int, str, bytes]
Handler = Callable[[dict[str, list[str]]], Response | Awaitable[Response]]
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
            503: "Service Unavailable"}
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_MAX_HEAD = 64 * 1024


def _json(value: object, status: int = 200) -> Response:
    return status, _JSON, (json.dumps(value, indent=2) + "\n").encode()


def text(body: str, status: int = 200) -> Response:
    """A plain-text response (one line, or a few)."""
    return status, _TEXT, (body + "\n").encode()


class HttpGetServer:
    """GET requests answered by path from `routes` (a handler may be a coroutine function)."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful when `port` is 0)."""
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            answer = self.answer(head[:_MAX_HEAD].decode("latin-1"))
            status, content_type, body = await answer if inspect.isawaitable(answer) else answer
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def answer(self, head: str) -> Response | Awaitable[Response]:
        """The response to one request head (request line and headers)."""
        parts = head.split("\r\n", 1)[0].split(" ")
        if len(parts) != 3:
            return text("bad request line", 400)
        method, target, _ = parts
        if method != "GET":
            return text("only GET is supported", 405)
        url = urlsplit(target)
        handler = self.routes.get(url.path)
        if handler is None:
            return text(f"no such endpoint; try one of: {', '.join(self.routes)}", 404)
        return handler(parse_qs(url.query))


class DebugHttpServer(HttpGetServer):
    """`/ready`, `/metrics`, `/debug/syncz`, `/debug/config_dump?proxyID=POD.NS`, `/debug/configz`."""

    def __init__(self, cache: SnapshotCache, stopping: Callable[[], bool] = lambda: False) -> None:
        self.cache = cache
        self.stopping = stopping
        super().__init__({
            "/ready": self._ready,
            "/metrics": self._metrics,
            "/debug/syncz": self._syncz,
            "/debug/config_dump": self._config_dump,
            "/debug/configz": self._configz,
        })

    def _ready(self, query: dict[str, list[str]]) -> Response:
        if self.stopping():
            return text("not ready: shutting down", 503)
        if self.cache.ready:
            return text("ready")
        return text("not ready: no configuration accepted yet", 503)

    def _metrics(self, query: dict[str, list[str]]) -> Response:
        return 200, "text/plain; version=0.0.4; charset=utf-8", self.cache.metrics.render().encode()

    def _syncz(self, query: dict[str, list[str]]) -> Response:
        from google.protobuf import json_format  # on first use: serving does not need it to start

        return _json([json_format.MessageToDict(config) for config in self.cache.client_configs()])

    def _config_dump(self, query: dict[str, list[str]]) -> Response:
        proxy_id = (query.get("proxyID") or [""])[0]
        if not proxy_id:
            return text("give the proxy as ?proxyID=POD.NAMESPACE", 400)
        try:
            dump = self.cache.config_dump(proxy_id)
        except NotReadyError as exc:
            return text(str(exc), 503)
        except UnknownProxyError as exc:
            return text(str(exc), 404)
        except GenerationError as exc:
            return text("\n".join([f"generating this proxy's config failed: {exc}", *exc.culprits]), 500)
        from google.protobuf import json_format

        return 200, _JSON, (json_format.MessageToJson(dump, indent=2) + "\n").encode()

    def _configz(self, query: dict[str, list[str]]) -> Response:
        return _json(self.cache.configz())
