"""What exec and port-forward share: a websocket stream on an ApiClient of its own.

Two properties of the official client shape this. `kubernetes.stream.stream` temporarily swaps
`call_api` on the ApiClient it is given, so a REST call on a shared client during an exec or a
port-forward goes over the websocket and fails: every stream gets a short-lived ApiClient. And
the client sets no timeout on websocket connects and handshakes, so `open_stream` does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from meshctl.errors import MeshctlError
from meshctl.kube.client import status_message

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    from meshctl.kube.client import KubeClient
    from meshctl.kube.pods import PodRef

__all__ = ["StreamError", "open_stream"]

T = TypeVar("T")

_handshake_lock = threading.Lock()


class StreamError(MeshctlError):
    """An exec or port-forward stream could not be opened or broke before it finished."""


def open_stream(
    client: KubeClient,
    pod: PodRef,
    opener: Callable[..., T],
    endpoint: Callable[[CoreV1Api], Callable[..., Any]],
    **options: Any,
) -> T:
    """Open one websocket stream to a pod and return it, open, for the caller to read and close.

    `opener` is `kubernetes.stream.stream` or `portforward`, `endpoint` picks the connect method
    (exec or portforward) of the CoreV1Api it is given, `options` are that method's parameters.
    The stream gets an ApiClient of its own, closed once the stream is open, and a handshake
    bounded by the client's timeout. Raises StreamError with the API server's reason when it
    refuses the upgrade (RBAC, a missing container, a pod that is gone).
    """
    from kubernetes.client import ApiClient, CoreV1Api
    from kubernetes.client.exceptions import ApiException

    from meshctl.calllog import timed

    with ApiClient(client.configuration) as api, _handshake_timeout(client.timeout), \
            timed(lambda: _describe(pod, options)) as outcome:
        try:
            opened = opener(endpoint(CoreV1Api(api)), pod.name, pod.namespace, _request_timeout=client.timeout, **options)
        except ApiException as exc:
            raise StreamError(_refusal(exc)) from None
        outcome("open")
        return opened


def _describe(pod: PodRef, options: dict[str, Any]) -> str:
    """A stream as the call log names it: `port-forward web-1.shop:15000`, `exec web-1.shop ...`."""
    if "ports" in options:
        return f"port-forward {pod}:{options['ports']}"
    return f"exec {pod} [{options.get('container', '')}] {' '.join(options.get('command') or [])}"


@contextlib.contextmanager
def _handshake_timeout(seconds: float) -> Iterator[None]:
    """websocket-client reads its timeout from a process-wide default when the socket is
    created, so set it for the duration of one handshake, under a lock, and put it back."""
    import websocket

    with _handshake_lock:
        previous = websocket.getdefaulttimeout()
        websocket.setdefaulttimeout(seconds)
        try:
            yield
        finally:
            websocket.setdefaulttimeout(previous)


def _refusal(exc: ApiException) -> str:
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
