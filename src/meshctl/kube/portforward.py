"""Port-forwards to pod ports: one TCP stream at a time, or a local listener that tunnels each
connection it accepts.

A port-forward websocket carries exactly one connection. `open_tunnel` gives that connection
as a local socket (one HTTP request to Envoy's admin port); `forward_local` listens on
127.0.0.1 and opens a tunnel per accepted connection, for clients that dial an address
themselves (gRPC to istiod's 15010/15012).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from meshctl.kube.pods import PodRef, running_pod
from meshctl.kube.streams import StreamError, open_stream

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["LocalForward", "Tunnel", "forward_local", "open_tunnel"]

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.1
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Tunnel:
    """The local end of a port-forward: a connected socket, and the error the pod side reported."""

    socket: socket.socket
    error: Callable[[], str | None]


@dataclass(slots=True)
class LocalForward:
    """A loopback listener tunnelling to a pod port; `errors` collects failed tunnels."""

    host: str
    port: int
    errors: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        """`HOST:PORT`, ready for a gRPC target."""
        return f"{self.host}:{self.port}"


@contextlib.contextmanager
def open_tunnel(client: KubeClient, pod: PodRef, port: int) -> Iterator[Tunnel]:
    """One TCP stream to a pod port, through a port-forward on its own ApiClient.

    Raises StreamError when the API server refuses the port-forward.
    """
    from kubernetes.stream import portforward

    forwarded = open_stream(client, pod, portforward, lambda api: api.connect_get_namespaced_pod_portforward,
                            ports=str(port))
    # The client's relay thread waits with select() and must not time out on its own. It may
    # already have closed the websocket (the pod refused the port), hence the guards.
    raw_websocket = forwarded.websocket.sock
    if raw_websocket is not None:
        with contextlib.suppress(OSError):
            raw_websocket.settimeout(None)
    tunnel = Tunnel(forwarded.socket(port), lambda: forwarded.error(port))
    tunnel.socket.settimeout(client.timeout)
    try:
        yield tunnel
    finally:
        _close_gracefully(tunnel.socket)
        forwarded.close()


@contextlib.contextmanager
def forward_local(client: KubeClient, pod: PodRef, port: int, *, local_port: int = 0) -> Iterator[LocalForward]:
    """Listen on 127.0.0.1 and tunnel every accepted connection to a pod port.

    The pod is checked first (it must be running). Each connection gets its own port-forward
    stream. Yields the listener's address; connections still open are cut when the block ends.
    """
    running_pod(client, pod.name, pod.namespace)
    listener = socket.create_server(("127.0.0.1", local_port))
    host, bound_port = listener.getsockname()[:2]
    forward = LocalForward(host, bound_port)
    stop = threading.Event()
    relays: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            if not select.select([listener], [], [], POLL_INTERVAL)[0]:
                continue
            try:
                connection, _ = listener.accept()
            except OSError:  # the client gave up between select() and accept()
                continue
            relay = threading.Thread(
                target=_relay,
                args=(client, connection, pod, port, forward, stop),
                name=f"meshctl port-forward {pod}:{port}",
                daemon=True,
            )
            relays.append(relay)
            relay.start()

    acceptor = threading.Thread(target=accept, name="meshctl port-forward listener", daemon=True)
    acceptor.start()
    try:
        yield forward
    finally:
        stop.set()
        acceptor.join()
        listener.close()
        for relay in relays:
            relay.join(client.timeout)


def _relay(
    client: KubeClient,
    connection: socket.socket,
    pod: PodRef,
    port: int,
    forward: LocalForward,
    stop: threading.Event,
) -> None:
    connection.settimeout(client.timeout)
    try:
        with open_tunnel(client, pod, port) as tunnel:
            _splice(connection, tunnel.socket, stop)
            if error := tunnel.error():
                forward.errors.append(error)
    except (StreamError, OSError) as exc:
        log.info("port-forward to %s:%d failed: %s", pod, port, exc)
        forward.errors.append(str(exc))
    finally:
        connection.close()


def _close_gracefully(end: socket.socket) -> None:
    """Say we are done writing, then read until the client's relay thread closes its side.

    Closing a socketpair end that still has unread data makes the other end's next read fail
    with ECONNRESET; in the client's relay thread that is an uncaught exception, the thread dies
    without closing the websocket, and the API server keeps the stream open. A peer that goes on
    talking (a gRPC server sending pings) is read until the socket timeout.
    """
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_WR)
        while end.recv(_CHUNK):
            pass


def _splice(one: socket.socket, other: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes or `stop` is set."""
    peers = {one.fileno(): other, other.fileno(): one}
    while not stop.is_set():
        readable, _, _ = select.select([one, other], [], [], POLL_INTERVAL)
        for source in readable:
            data = source.recv(_CHUNK)
            if not data:
                return
            peers[source.fileno()].sendall(data)
