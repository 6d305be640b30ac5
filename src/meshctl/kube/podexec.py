"""Running a command in a container (`kubectl exec`) and collecting all it printed.

inspect falls back on it when a port-forward to Envoy's admin port is forbidden or broken:
`pilot-agent request GET PATH` in the `istio-proxy` container reaches the same endpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshctl.kube.streams import StreamError, open_stream

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient
    from meshctl.kube.pods import PodRef

__all__ = ["ExecResult", "exec_command"]

_POLL = 1.0


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What a command run in a container printed and how it ended."""

    stdout: bytes
    stderr: bytes
    exit_code: int


def exec_command(client: KubeClient, pod: PodRef, container: str, argv: list[str]) -> ExecResult:
    """Run a command in a container and collect all of its output and its exit code.

    Reads until the API server closes the stream (long outputs arrive in many frames) and gives
    up when nothing arrives for the client's timeout. Raises StreamError when the exec cannot
    start or ends without an exit status.
    """
    from kubernetes.stream import stream
    from websocket import WebSocketException

    session = open_stream(
        client, pod, stream, lambda api: api.connect_get_namespaced_pod_exec, container=container, command=argv,
        stdin=False, stdout=True, stderr=True, tty=False, binary=True, _preload_content=False,
    )
    stdout, stderr = bytearray(), bytearray()
    try:
        last_frame = time.monotonic()
        while session.is_open():
            if time.monotonic() - last_frame > client.timeout:
                raise StreamError(f"no output for {client.timeout:g} s")
            session.update(timeout=_POLL)
            out, err = session.read_stdout(timeout=0), session.read_stderr(timeout=0)
            if out or err:
                last_frame = time.monotonic()
            stdout += out
            stderr += err
        stdout += session.read_stdout(timeout=0)
        stderr += session.read_stderr(timeout=0)
        status = session.read_channel(3, timeout=0)
    except (WebSocketException, OSError) as exc:
        raise StreamError(f"the exec stream broke: {exc}") from None
    finally:
        session.close()
    return ExecResult(bytes(stdout), bytes(stderr), _exit_code(status))


def _exit_code(status: bytes) -> int:
    """The exit code in the Status the API server sends on the exec error channel."""
    if not status:
        raise StreamError("the exec stream ended without an exit status")
    try:
        document = json.loads(status)
    except ValueError:
        raise StreamError(f"unreadable exec status: {status[:200]!r}") from None
    if document.get("status") == "Success":
        return 0
    for cause in (document.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", "1"))
    raise StreamError(document.get("message") or "exec failed")
