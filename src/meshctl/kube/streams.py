"""What exec and port-forward share: a websocket stream on an ApiClient of its own.

Two properties of the official client shape this. `kubernetes.stream.stream` temporarily swaps
`call_api` on the ApiClient it is given, so a REST call on a shared client during an exec or a
port-forward goes over the websocket and fails: every stream gets a short-lived ApiClient. And
the client sets no timeout on websocket connects and handshakes, so `stream_api` does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from meshctl.errors import MeshctlError
from meshctl.kube.client import status_message

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    from meshctl.kube.client import KubeClient

__all__ = ["StreamError", "stream_api", "stream_refusal"]

_handshake_lock = threading.Lock()


class StreamError(MeshctlError):
    """An exec or port-forward stream could not be opened or broke before it finished."""


@contextlib.contextmanager
def stream_api(client: KubeClient) -> Iterator[CoreV1Api]:
    """A CoreV1Api on a fresh ApiClient, with the websocket handshake bounded by the client's
    timeout, for opening one stream; the ApiClient is closed when the block ends.

    websocket-client reads its timeout from a process-wide default when the socket is created,
    so it is set for the duration of the block, under a lock, and the old value put back.
    """
    import websocket
    from kubernetes.client import ApiClient, CoreV1Api

    with ApiClient(client.configuration) as api, _handshake_lock:
        previous = websocket.getdefaulttimeout()
        websocket.setdefaulttimeout(client.timeout)
        try:
            yield CoreV1Api(api)
        finally:
            websocket.setdefaulttimeout(previous)


def stream_refusal(exc: ApiException) -> str:
    """Why a websocket upgrade failed: the Status message the API server sent, if any.

    The client reports a refused upgrade as ApiException(status=0) whose reason holds the
    status line, the headers and the body separated by ` -+-+- `.
    """
    parts = str(exc.reason or "").split(" -+-+- ")
    message = status_message(parts[-1]) if len(parts) > 1 else None
    status_line = parts[0].removeprefix("Handshake status ").strip()
    if message:
        return f"{message} (HTTP {status_line})"
    return status_line or "the API server refused the stream"
