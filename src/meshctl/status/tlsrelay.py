"""A loopback relay that speaks TLS to istiod without verifying its certificate.

istioctl reaches istiod's secure xDS port (15012) with TLS and InsecureSkipVerify: the server
certificate is signed by the mesh's own CA, which the client has no copy of, and the request is
authenticated by the bearer token it carries instead. grpcio cannot skip verification, so the
gRPC channel talks plaintext HTTP/2 to this relay, and the relay carries each connection to the
target over TLS (ALPN `h2`, no certificate check). The token still travels inside TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading

from meshctl.errors import MeshctlError

_CHUNK = 64 * 1024


class TlsRelay:
    """Listens on 127.0.0.1 and relays every connection to `host:port` over unverified TLS.

    `server_name` is the SNI sent (istiod's certificate names `istiod.<ns>.svc`). Use as a
    context manager; `address` is what the gRPC channel dials, and `failures` says why
    connections to the target failed (gRPC only sees them closed).
    """

    def __init__(self, host: str, port: int, server_name: str, timeout: float) -> None:
        self.target = (host, port)
        self.server_name = server_name
        self.timeout = timeout
        self.address = ""
        self.failures: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), name="meshctl tls relay", daemon=True)

    def __enter__(self) -> TlsRelay:
        self._thread.start()
        if not self._ready.wait(self.timeout):
            raise MeshctlError("the TLS relay did not start")
        if self._failure is not None:
            raise MeshctlError(f"cannot start the TLS relay: {self._failure}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(self.timeout)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        connections: set[asyncio.Task[None]] = set()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await self._relay(reader, writer, context)
            finally:
                connections.discard(task)

        try:
            server = await asyncio.start_server(accept, "127.0.0.1", 0)
        except OSError as exc:
            self._failure = exc
            self._ready.set()
            return
        host, port = server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        self._ready.set()
        async with server:
            await self._stop.wait()
            for task in list(connections):
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.target, ssl=context, server_hostname=self.server_name), self.timeout
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.failures.append(f"TLS to {self.target[0]}:{self.target[1]} failed: {exc or type(exc).__name__}")
            writer.close()  # gRPC sees the connection drop and reports the target unavailable
            return
        pumps = [asyncio.create_task(_pump(reader, upstream_writer)), asyncio.create_task(_pump(upstream_reader, writer))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for stream in (writer, upstream_writer):
                stream.close()
            await asyncio.gather(*pumps, return_exceptions=True)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
