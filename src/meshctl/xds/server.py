"""The running control plane: ADS and CSDS over gRPC, the HTTP debug server, and the config
source feeding them, started and stopped as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import grpc
from envoy.service.status.v3 import csds_pb2_grpc

from meshctl.addresses import split_address
from meshctl.errors import MeshctlError
from meshctl.xds import ads
from meshctl.xds.admission import DEFAULT_MAX_CONNECTIONS, Admission
from meshctl.xds.csds import CsdsServicer
from meshctl.xds.cache import SnapshotCache
from meshctl.xds.debug_http import DebugHttpServer
from meshctl.xds.limits import MAX_REQUEST_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable

    from meshctl.sources.base import ConfigSource
    from meshctl.xds.generation import Translate
    from meshctl.xds.identity import NodeIdentity

__all__ = ["MAX_MESSAGE", "XdsServer"]

log = logging.getLogger("meshctl.xds")

MAX_MESSAGE = 256 * 1024 * 1024
_GRPC_OPTIONS = (
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
    # Refuse to share the port with another process instead of silently splitting connections.
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    # A connection without a stream for 5 minutes is closed (Envoy's always has its ADS stream).
    ("grpc.max_connection_idle_ms", 300_000),
    # No bandwidth-delay probing: it only grows the window for what proxies send us (requests,
    # small but for rare large subscriptions, which flow in the default window all the same),
    # and its PINGs follow the data received, the ACKs: without them a push to 1,000 proxies
    # costs 7-12 % less CPU (20 % in the raw-replay floor; benchmarks/serve_fanout.py). What
    # we send is not affected.
    ("grpc.http2.bdp_probe", 0),
)


class XdsServer:
    """Owns the gRPC server, the debug HTTP server and the task that applies source updates.

    `nodes` is how nodes are told apart (see identity.py): serve gives it Istio's naming rules.
    Workload certificates never pass through it: they come from the CA through each proxy's own
    agent, which serves them to its Envoy. The one secret it sends is a gateway's certificate
    (its `credentialName`), and only to a gateway that proved its identity over mutual TLS.
    """

    grpc_options = _GRPC_OPTIONS

    def __init__(self, xds_address: str, debug_address: str | None, nodes: NodeIdentity,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.cache = SnapshotCache(nodes)
        self.admission = Admission(max_connections, self.cache.metrics)
        self.xds_address = xds_address
        self.debug_address = debug_address
        self.xds_port = 0
        self.debug_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._mutual_tls: grpc.aio.Server | None = None
        self._http: DebugHttpServer | None = None
        self._feeder: asyncio.Task[None] | None = None
        self.stopping = False

    async def start(self) -> None:
        """Listen. Config comes later through `feed`, so that proxies can connect (and wait for
        their config) while the heavy translator is imported and the directory is read."""
        host, port = split_address(self.xds_address)
        server = grpc.aio.server(options=_GRPC_OPTIONS)
        self.register(server)
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        bound = _bound(lambda: server.add_insecure_port(target), "xDS", self.xds_address)
        await server.start()
        self._grpc = server
        self.xds_port = bound
        if self.debug_address:
            http = DebugHttpServer(self.cache, lambda: self.stopping)
            debug_host, debug_port = split_address(self.debug_address)
            try:
                self.debug_port = await http.start(debug_host, debug_port)
            except OSError as exc:
                await server.stop(None)
                raise MeshctlError(f"cannot listen for debug HTTP on {self.debug_address}: {exc.strerror or exc}") from None
            self._http = http

    async def listen_mutual_tls(self, address: str, key_pem: bytes, chain_pem: bytes, client_roots: bytes) -> int:
        """Also offer ADS and CSDS on `address` over TLS that requires a client certificate
        issued by `client_roots` (Istio's old 15011): the identity in that certificate is the
        stream's proven identity, what a gateway needs to be sent its Secrets. Returns the port."""
        server = grpc.aio.server(options=_GRPC_OPTIONS)
        self.register(server)
        credentials = grpc.ssl_server_credentials([(key_pem, chain_pem)], root_certificates=client_roots,
                                                  require_client_auth=True)
        port = _bound(lambda: server.add_secure_port(address, credentials), "xDS over mutual TLS", address)
        await server.start()
        self._mutual_tls = server
        return port

    def register(self, server: grpc.aio.Server) -> None:
        """Offer ADS and CSDS on `server`: this server's port, and serve's TLS port next to the CA."""
        ads.register(server, ads.AdsServicer(self.cache, self.admission))
        csds_pb2_grpc.add_ClientStatusDiscoveryServiceServicer_to_server(CsdsServicer(self.cache, self.admission), server)

    def feed(self, source: ConfigSource, translate: Translate) -> None:
        """Apply every update of `source`, translated with `translate`, until stopped."""
        self._feeder = asyncio.create_task(self._feed(source, translate))

    async def _feed(self, source: ConfigSource, translate: Translate) -> None:
        async for update in source.updates():
            self.cache.apply(update, translate)

    async def wait(self) -> None:
        """Until the config source ends (it does not, unless it fails)."""
        assert self._feeder is not None
        await self._feeder

    async def stop(self, grace: float = 1.0) -> None:
        """Leave, so that proxies go elsewhere: stop accepting (gRPC closes the listener and
        sends GOAWAY on every connection), end every ADS stream cleanly so its proxy reconnects
        to another replica at once, and once they have ended (`grace` seconds at most) cut the
        calls left (SDS streams, which Envoy simply opens again elsewhere). `/ready` says
        "shutting down" meanwhile, so a Service stops sending new connections."""
        self.stopping = True
        if self._feeder is not None:
            self._feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feeder
        leaving = asyncio.create_task(self._grpc.stop(grace)) if self._grpc is not None else None
        await asyncio.sleep(0)  # the gRPC server stops accepting before streams are told to end
        self.cache.close_all()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.cache.streams and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if leaving is not None and self._grpc is not None:
            await self._grpc.stop(0)
            await leaving
        if self._http is not None:
            await self._http.stop()
        if self._mutual_tls is not None:
            await self._mutual_tls.stop(0)
        log.info("stopped")


def _bound(add_port: Callable[[], int], what: str, address: str) -> int:
    """The port gRPC bound, or a MeshctlError saying why it could not (gRPC raises for some
    failures and answers 0 for others)."""
    try:
        port = add_port()
    except RuntimeError as exc:
        raise MeshctlError(f"cannot listen for {what} on {address}: {exc}") from None
    if not port:
        raise MeshctlError(f"cannot listen for {what} on {address}: the address is in use or not local")
    return int(port)
