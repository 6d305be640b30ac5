"""The HTTPS server of both webhooks (istiod's port 15017, the `istiod` Service's 443).

HTTP/1.1 with keep-alive on asyncio streams, TLS with a serving certificate from the mesh's CA
(the API server checks it against the webhook configuration's caBundle). The checks on a
request are istiod's: POST, `Content-Type: application/json` (else 415), a body (else 400 `no
body found`) of at most 6 MiB (else 413). Answers are computed inline: injecting a pod takes
about a millisecond, less than handing it to a thread would cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshctl.inject.settings import InjectSettings
from meshctl.webhooks.admission import FALLBACK_API_VERSION, Answer, Request, ReviewError, answer_review, read_review
from meshctl.webhooks.injection import review_pod, settings_for_path
from meshctl.webhooks.validation import review_config

if TYPE_CHECKING:
    from meshctl.model.meshconfig import MeshConfig

__all__ = ["Credentials", "MAX_BODY", "WebhookServer", "tls_context"]

log = logging.getLogger("meshctl.webhooks")

MAX_BODY = 6 * 1024 * 1024
_MAX_HEAD = 64 * 1024
_IDLE_SECONDS = 90.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
            415: "Unsupported Media Type", 500: "Internal Server Error"}


@dataclass(frozen=True, slots=True)
class Credentials:
    """The server's certificate chain and key (PEM); the key never leaves this process."""

    chain_pem: bytes
    key_pem: bytes


def tls_context(credentials: Credentials) -> ssl.SSLContext:
    """A server context for `credentials`. Python's ssl loads a key only from a path, so the
    PEM goes through anonymous memory files (memfd): the key never touches a disk."""
    import os

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    descriptors = [os.memfd_create(name, os.MFD_CLOEXEC) for name in ("webhook-chain", "webhook-key")]
    try:
        for fd, data in zip(descriptors, (credentials.chain_pem, credentials.key_pem), strict=True):
            os.write(fd, data)
        chain, key = (f"/proc/self/fd/{fd}" for fd in descriptors)
        context.load_cert_chain(chain, key)
    finally:
        for fd in descriptors:
            os.close(fd)
    return context


class WebhookServer:
    """`/inject[/...]` and `/validate[/]` over HTTPS.

    With `awaiting_mesh` (what the mesh config is to come from), `/inject` refuses every pod,
    saying so, until `use_mesh` gives it the mesh config: a pod injected with istiod's defaults
    while the cluster's own config is being read would get the wrong sidecar."""

    def __init__(self, settings: InjectSettings, credentials: Credentials, *, awaiting_mesh: str = "",
                 ca_bundle: bytes = b"") -> None:
        self.settings = settings
        self.ca_bundle = ca_bundle
        """The roots `credentials` chain to: what the API server must trust to call this server."""
        self._awaiting = awaiting_mesh
        self._context = tls_context(credentials)
        self._server: asyncio.Server | None = None
        self.port = 0

    def use_mesh(self, mesh: MeshConfig) -> None:
        """Inject with `mesh` from the next pod on (the mesh config serve watches changed)."""
        self.settings = dataclasses.replace(self.settings, mesh=mesh)
        self._awaiting = ""

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful when `port` is 0)."""
        self._server = await asyncio.start_server(self._connection, host, port, ssl=self._context,
                                                  limit=_MAX_HEAD, ssl_handshake_timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def answer(self, method: str, path: str, content_type: str, body: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request: the routing and istiod's checks."""
        route = path.split("?", 1)[0]
        review: Callable[[Request], Answer]
        if route == "/inject" or route.startswith("/inject/"):
            review = self._injector(route)
        elif route in ("/validate", "/validate/"):
            review = review_config
        else:
            return 404, "text/plain", b"404 page not found\n"
        if method != "POST":
            return 405, "text/plain", b"only POST is supported\n"
        if not body:
            return 400, "text/plain", b"no body found\n"
        if content_type != "application/json":
            return 415, "text/plain", f"contentType={content_type}, expect application/json\n".encode()
        try:
            request = read_review(body)
        except ReviewError as exc:
            return 200, "application/json", answer_review(FALLBACK_API_VERSION, "", Answer(False, str(exc)))
        started = time.perf_counter()
        answer = review(request)
        log.debug("admission review", extra={"path": route, "uid": request.uid, "kind": request.kind,
                                             "namespace": request.namespace, "allowed": answer.allowed,
                                             "dry_run": request.dry_run,
                                             "ms": round((time.perf_counter() - started) * 1000, 3)})
        if not answer.allowed:
            log.info("admission refused", extra={"path": route, "kind": request.kind, "object": request.name,
                                                 "namespace": request.namespace, "reason": answer.message})
        return 200, "application/json", answer_review(request.api_version, request.uid, answer)

    def _injector(self, route: str) -> Callable[[Request], Answer]:
        """How `/inject[/...]` answers now: with the settings the path adds to, or, while the
        mesh config is awaited, a refusal saying so."""
        if self._awaiting:
            refusal = Answer(False, f"meshctl serve has not read the mesh config from {self._awaiting} yet; "
                                    "try again shortly")
            return lambda request: refusal
        settings = settings_for_path(self.settings, route)
        return lambda request: review_pod(request, settings)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError,
                ssl.SSLError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to be closed."""
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE_SECONDS)
        lines = head.decode("latin-1").split("\r\n")
        method, path, version = (lines[0].split(" ") + ["", ""])[:3]
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if length > MAX_BODY:
            await self._send(writer, 413, "text/plain", b"request entity too large\n", False)
            return False
        body = await reader.readexactly(length) if length else b""
        content_type = headers.get("content-type", "").split(";", 1)[0].strip()
        try:
            status, kind, payload = self.answer(method, path, content_type, body)
        except Exception:  # a bug must not leave the API server waiting for an answer
            log.exception("admission review failed", extra={"path": path})
            status, kind, payload = 500, "text/plain", b"internal error (see meshctl serve's log)\n"
        await self._send(writer, status, kind, payload, keep_alive)
        return keep_alive

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes,
                    keep_alive: bool) -> None:
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()
