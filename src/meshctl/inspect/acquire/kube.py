"""Reach proxies and control planes through the Kubernetes API, as istioctl does.

A pod's Envoy admin endpoint listens on 127.0.0.1 inside the pod, so the only ways in are a
port-forward (which enters the pod's network namespace) and an exec into the sidecar. This
module resolves what the user named (`POD[.NS]`, `deploy/NAME[.NS]`, `-l SELECTOR`) to running
pods, reads their admin endpoint through a port-forward, and falls back to
`pilot-agent request` over exec when port-forwarding is forbidden or broken. It also gives
proxy-status what it needs to talk to istiod without an address: the istiod pods, a local
listener that tunnels each connection to a pod port, and a ServiceAccount token for 15012.

It is the only module that imports `kubernetes`, and it does so lazily: importing the client
costs more than half a second, which every TAB completion would otherwise pay.

Two properties of the client shape the code. `kubernetes.stream.stream` temporarily swaps
`call_api` on the ApiClient it is given, so a REST call on a shared client during an exec or a
port-forward goes over the websocket and fails; every stream therefore gets a short-lived
ApiClient of its own. And the client sets no timeout on websocket sockets, so this module does.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from meshctl.errors import MeshctlError, UsageError
from meshctl.inspect.acquire import DumpSource

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, Configuration, CoreV1Api, V1LabelSelector
    from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "default"
DEFAULT_TIMEOUT = 15.0
PROXY_ADMIN_PORT = 15000
PROXY_CONTAINER = "istio-proxy"
ISTIOD_LABEL = "app=istiod"
REVISION_LABEL = "istio.io/rev"
RUNNING = "status.phase=Running"
POLL_INTERVAL = 0.1

_KINDS = {
    "": "pod",
    "po": "pod",
    "pod": "pod",
    "pods": "pod",
    "deploy": "deployment",
    "deployment": "deployment",
    "deployments": "deployment",
    "deployment.apps": "deployment",
    "deployments.apps": "deployment",
}

_handshake_lock = threading.Lock()


@dataclass(frozen=True, slots=True, order=True)
class PodRef:
    """A pod by name and namespace; prints as `NAME.NS`, the form istioctl uses for proxy IDs."""

    name: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.name}.{self.namespace}"


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What a command run in a container printed and how it ended."""

    stdout: bytes
    stderr: bytes
    exit_code: int


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


class StreamError(MeshctlError):
    """An exec or port-forward stream could not be opened or broke before it finished."""


def parse_target(target: str, namespace: str) -> tuple[str, str, str]:
    """Split `[TYPE/]NAME[.NS]` into (kind, name, namespace), kind being `pod` or `deployment`.

    Like istioctl, the namespace is what follows the last dot of the name, so a `.NS` suffix
    wins over `-n`; `namespace` is used when there is none.
    """
    kind_text, _, rest = target.rpartition("/")
    kind = _KINDS.get(kind_text.lower())
    if kind is None:
        raise UsageError(
            f'unsupported resource type "{kind_text}" in "{target}"; '
            "use POD[.NS], pod/NAME[.NS] or deploy/NAME[.NS]"
        )
    name, dot, suffix = rest.rpartition(".")
    name, target_namespace = (name, suffix) if dot else (suffix, namespace)
    if not name or not target_namespace:
        raise UsageError(f'invalid target "{target}"; use POD[.NS] or deploy/NAME[.NS]')
    return kind, name, target_namespace


def selector_string(selector: V1LabelSelector | None) -> str:
    """A LabelSelector object (a Deployment's `spec.selector`) as a `labelSelector` query."""
    if selector is None:
        return ""
    parts = [f"{key}={value}" for key, value in sorted((selector.match_labels or {}).items())]
    for expression in selector.match_expressions or []:
        values = ",".join(expression.values or [])
        parts.append(
            {
                "In": f"{expression.key} in ({values})",
                "NotIn": f"{expression.key} notin ({values})",
                "Exists": expression.key,
                "DoesNotExist": f"!{expression.key}",
            }[expression.operator]
        )
    return ",".join(parts)


def load_client(
    kubeconfig: str | None, context: str | None, *, timeout: float = DEFAULT_TIMEOUT
) -> KubeClient:
    """Connect as kubectl would: `-c/--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`.

    `context` picks a kubeconfig context (default: the current one). The context's namespace
    becomes `KubeClient.namespace`, the default for every call that is not given `-n`.
    `timeout` bounds every API request and every socket read.
    """
    import yaml
    from kubernetes import client, config

    path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        contexts, current = config.list_kube_config_contexts(config_file=path)
        chosen = current
        if context is not None:
            chosen = next((c for c in contexts if c.get("name") == context), None)
            if chosen is None:
                names = ", ".join(sorted(str(c.get("name")) for c in contexts))
                raise MeshctlError(f'context "{context}" not found in kubeconfig {path} ({names})')
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=path,
            context=chosen["name"],
            client_configuration=configuration,
            persist_config=False,
        )
    except (config.ConfigException, OSError, ValueError, yaml.YAMLError) as exc:
        raise MeshctlError(
            f"cannot load kubeconfig {path}: {exc}; pass -c/--kubeconfig or set KUBECONFIG"
        ) from None
    namespace = (chosen.get("context") or {}).get("namespace") or DEFAULT_NAMESPACE
    return KubeClient(configuration, chosen["name"], namespace, timeout)


class KubeClient:
    """One Kubernetes API server as a kubeconfig context describes it, with meshctl's verbs."""

    def __init__(
        self, configuration: Configuration, context: str, namespace: str, timeout: float
    ) -> None:
        from kubernetes.client import ApiClient

        self.configuration = configuration
        self.context = context
        self.namespace = namespace
        self.timeout = timeout
        self._api: ApiClient = ApiClient(configuration)

    @property
    def host(self) -> str:
        """The API server URL, for messages."""
        return str(self.configuration.host)

    @property
    def core(self) -> CoreV1Api:
        """CoreV1Api on the shared REST client (never hand it to a stream)."""
        from kubernetes.client import CoreV1Api

        return CoreV1Api(self._api)

    def resolve_pods(
        self, target: str | None, selector: str | None, namespace: str | None = None
    ) -> list[PodRef]:
        """The running pods a target or a `-l` selector names, sorted by name.

        `POD[.NS]` must be running; `deploy/NAME[.NS]` gives the first running pod (by name) that
        the Deployment's selector matches; `selector` gives every running pod it matches.
        `namespace` (`-n`) defaults to the context's namespace.
        """
        namespace = namespace or self.namespace
        if target and selector:
            raise UsageError("give either a pod or -l/--selector, not both")
        if selector:
            pods = self.running_pods(namespace, selector)
            if not pods:
                raise MeshctlError(f'no running pods match "{selector}" in namespace "{namespace}"')
            return pods
        if not target:
            raise UsageError("name a pod (POD[.NS] or deploy/NAME[.NS]) or give -l/--selector")
        kind, name, namespace = parse_target(target, namespace)
        if kind == "deployment":
            return [self._deployment_pod(name, namespace)]
        return [self._running_pod(name, namespace)]

    def running_pods(self, namespace: str, selector: str) -> list[PodRef]:
        """Running pods matching a label selector, sorted by name (possibly none)."""
        with self._api_errors(f'cannot list pods in namespace "{namespace}"'):
            listing = self.core.list_namespaced_pod(
                namespace,
                label_selector=selector,
                field_selector=RUNNING,
                _request_timeout=self.timeout,
            )
        return sorted(PodRef(pod.metadata.name, namespace) for pod in listing.items)

    def find_istiod_pods(
        self, namespace: str = "istio-system", revision: str | None = None, label: str | None = None
    ) -> list[PodRef]:
        """The running istiod pods proxy-status should ask when no `--xds-address` is given.

        Selected by `app=istiod` (or `label`, from `--xds-label`), narrowed to one control plane
        revision by `istio.io/rev` when `revision` is set.
        """
        selector = label or ISTIOD_LABEL
        if revision:
            selector = f"{selector},{REVISION_LABEL}={revision}"
        pods = self.running_pods(namespace, selector)
        if not pods:
            raise MeshctlError(
                f'no running istiod pods match "{selector}" in namespace "{namespace}"; '
                "check -i/--istioNamespace and -r/--revision, or pass --xds-address"
            )
        return pods

    def service_account_token(
        self, namespace: str, name: str, audience: str = "istio-ca", expiration_seconds: int = 600
    ) -> str:
        """A short-lived token for a ServiceAccount (TokenRequest API).

        istiod's secure xDS port (15012) accepts debug requests only from an authenticated
        identity; istioctl presents a token of `istio-system/default` for audience `istio-ca`.
        """
        from kubernetes.client import AuthenticationV1TokenRequest, V1TokenRequestSpec

        body = AuthenticationV1TokenRequest(
            spec=V1TokenRequestSpec(audiences=[audience], expiration_seconds=expiration_seconds)
        )
        with self._api_errors(
            f'cannot create a token for service account "{name}" in namespace "{namespace}"',
            not_found=f'serviceaccounts "{name}" not found in namespace "{namespace}"',
        ):
            answer = self.core.create_namespaced_service_account_token(
                name, namespace, body, _request_timeout=self.timeout
            )
        token = answer.status.token if answer.status else None
        if not token:
            raise MeshctlError(f'the API server returned no token for service account "{name}"')
        return token

    @contextlib.contextmanager
    def forward(self, pod: str, namespace: str, port: int) -> Iterator[Tunnel]:
        """One TCP stream to a pod port, through a port-forward on its own ApiClient.

        A port-forward websocket carries exactly one connection, so callers open one per
        request. Raises StreamError when the API server refuses the port-forward.
        """
        from kubernetes.client import ApiClient, CoreV1Api
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import portforward

        with ApiClient(self.configuration) as api, _handshake_timeout(self.timeout):
            try:
                forwarded = portforward(
                    CoreV1Api(api).connect_get_namespaced_pod_portforward,
                    pod,
                    namespace,
                    ports=str(port),
                    _request_timeout=self.timeout,
                )
            except ApiException as exc:
                raise StreamError(_stream_refusal(exc)) from None
        # The client's relay thread waits with select() and must not time out on its own. It may
        # already have closed the websocket (the pod refused the port), hence the guards.
        raw_websocket = forwarded.websocket.sock
        if raw_websocket is not None:
            with contextlib.suppress(OSError):
                raw_websocket.settimeout(None)
        tunnel = Tunnel(forwarded.socket(port), lambda: forwarded.error(port))
        tunnel.socket.settimeout(self.timeout)
        try:
            yield tunnel
        finally:
            _close_gracefully(tunnel.socket)
            forwarded.close()

    def exec_command(self, pod: str, namespace: str, container: str, argv: list[str]) -> ExecResult:
        """Run a command in a container and collect all of its output and its exit code.

        Reads until the API server closes the stream (long outputs arrive in many frames) and
        gives up when nothing arrives for `timeout` seconds. Raises StreamError when the exec
        cannot start or ends without an exit status.
        """
        from kubernetes.client import ApiClient, CoreV1Api
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream
        from websocket import WebSocketException

        with ApiClient(self.configuration) as api, _handshake_timeout(self.timeout):
            try:
                session = stream(
                    CoreV1Api(api).connect_get_namespaced_pod_exec,
                    pod,
                    namespace,
                    container=container,
                    command=argv,
                    stdin=False,
                    stdout=True,
                    stderr=True,
                    tty=False,
                    binary=True,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
            except ApiException as exc:
                raise StreamError(_stream_refusal(exc)) from None
        stdout, stderr = bytearray(), bytearray()
        try:
            last_frame = time.monotonic()
            while session.is_open():
                if time.monotonic() - last_frame > self.timeout:
                    raise StreamError(f"no output for {self.timeout:g} s")
                session.update(timeout=POLL_INTERVAL * 10)
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

    @contextlib.contextmanager
    def port_forward_local(
        self, pod: str, namespace: str, port: int, *, local_port: int = 0
    ) -> Iterator[LocalForward]:
        """Listen on 127.0.0.1 and tunnel every accepted connection to a pod port.

        For clients that dial an address themselves, such as gRPC to istiod's 15010/15012:
        each connection gets its own port-forward stream. Yields the listener's address;
        connections still open are cut when the block ends.
        """
        self._running_pod(pod, namespace)
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
                    target=self._relay,
                    args=(connection, pod, namespace, port, forward, stop),
                    name=f"meshctl port-forward {pod}.{namespace}:{port}",
                    daemon=True,
                )
                relays.append(relay)
                relay.start()

        acceptor = threading.Thread(
            target=accept, name="meshctl port-forward listener", daemon=True
        )
        acceptor.start()
        try:
            yield forward
        finally:
            stop.set()
            acceptor.join()
            listener.close()
            for relay in relays:
                relay.join(self.timeout)

    def _relay(
        self,
        connection: socket.socket,
        pod: str,
        namespace: str,
        port: int,
        forward: LocalForward,
        stop: threading.Event,
    ) -> None:
        connection.settimeout(self.timeout)
        try:
            with self.forward(pod, namespace, port) as tunnel:
                _splice(connection, tunnel.socket, stop)
                if error := tunnel.error():
                    forward.errors.append(error)
        except (StreamError, OSError) as exc:
            log.info("port-forward to %s.%s:%d failed: %s", pod, namespace, port, exc)
            forward.errors.append(str(exc))
        finally:
            connection.close()

    def _running_pod(self, name: str, namespace: str) -> PodRef:
        with self._api_errors(
            f'cannot read pod "{name}" in namespace "{namespace}"',
            not_found=f'pods "{name}" not found in namespace "{namespace}"',
        ):
            pod = self.core.read_namespaced_pod(name, namespace, _request_timeout=self.timeout)
        phase = (pod.status.phase if pod.status else None) or "unknown"
        if phase != "Running":
            raise MeshctlError(
                f'pod "{name}" in namespace "{namespace}" is not running (phase {phase})'
            )
        return PodRef(name, namespace)

    def _deployment_pod(self, name: str, namespace: str) -> PodRef:
        from kubernetes.client import AppsV1Api

        with self._api_errors(
            f'cannot read deployment "{name}" in namespace "{namespace}"',
            not_found=f'deployments "{name}" not found in namespace "{namespace}"',
        ):
            deployment = AppsV1Api(self._api).read_namespaced_deployment(
                name, namespace, _request_timeout=self.timeout
            )
        selector = selector_string(deployment.spec.selector if deployment.spec else None)
        if not selector:
            raise MeshctlError(f'deployment "{name}" in namespace "{namespace}" has no selector')
        pods = self.running_pods(namespace, selector)
        if not pods:
            raise MeshctlError(
                f'deployment "{name}" in namespace "{namespace}" has no running pods'
            )
        return pods[0]

    @contextlib.contextmanager
    def _api_errors(self, action: str, not_found: str | None = None) -> Iterator[None]:
        """Turn client exceptions into MeshctlError messages that say what failed and why."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            yield
        except ApiException as exc:
            if exc.status == 404 and not_found:
                raise MeshctlError(not_found) from None
            raise MeshctlError(
                f"{action}: {_status_message(exc.body) or exc.reason} (HTTP {exc.status})"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise MeshctlError(
                f"{action}: cannot reach the Kubernetes API at {self.host} ({reason})"
            ) from None


@dataclass(frozen=True, slots=True)
class Tunnel:
    """The local end of a port-forward: a connected socket, and the error the pod side reported."""

    socket: socket.socket
    error: Callable[[], str | None]


@dataclass(slots=True)
class PodSource:
    """A pod's Envoy admin endpoint (a DumpSource), read over port-forward or, failing that, exec.

    Each request opens a port-forward to `admin_port`, sends one HTTP/1.1 request with
    `Connection: close` and reads the whole response. When the port-forward cannot be opened
    or breaks (RBAC forbids it, the port is closed, the stream is cut), the request is run as
    `pilot-agent request METHOD PATH` in the `istio-proxy` container instead, and later requests
    go straight to exec. An HTTP error from Envoy itself is reported as is, never retried.
    """

    client: KubeClient
    pod: str
    namespace: str
    admin_port: int = PROXY_ADMIN_PORT
    _forward_failure: str | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.pod}.{self.namespace}"

    @property
    def live(self) -> bool:
        return True

    def get(self, path: str) -> bytes:
        return self._request("GET", path)

    def post(self, path: str) -> bytes:
        return self._request("POST", path)

    def _request(self, method: str, path: str) -> bytes:
        path = path.lstrip("/")
        if self._forward_failure is None:
            try:
                return self._over_forward(method, path)
            except StreamError as exc:
                self._forward_failure = str(exc)
                log.info(
                    "port-forward to %s:%d failed (%s); using exec", self.name, self.admin_port, exc
                )
        return self._over_exec(method, path, self._forward_failure)

    def _over_forward(self, method: str, path: str) -> bytes:
        with self.client.forward(self.pod, self.namespace, self.admin_port) as tunnel:
            connection = http.client.HTTPConnection("127.0.0.1", self.admin_port)
            connection.sock = tunnel.socket
            try:
                connection.request(method, f"/{path}", headers={"Connection": "close"})
                response = connection.getresponse()
                body = response.read()
            except (http.client.HTTPException, OSError) as exc:
                raise StreamError(tunnel.error() or _describe(exc)) from None
        if response.status != 200:
            detail = body.decode(errors="replace").strip()
            raise MeshctlError(
                f"Envoy admin on {self.name} answered HTTP {response.status} to {method} /{path}"
                + (f": {detail}" if detail else "")
            )
        return body

    def _over_exec(self, method: str, path: str, forward_failure: str) -> bytes:
        argv = ["pilot-agent", "request", method, path]
        context = (
            f"cannot {method} /{path} on {self.name}: port-forward to port {self.admin_port} "
            f"failed ({forward_failure}), and the fallback `{' '.join(argv)}` "
            f"in container {PROXY_CONTAINER}"
        )
        try:
            result = self.client.exec_command(self.pod, self.namespace, PROXY_CONTAINER, argv)
        except StreamError as exc:
            raise MeshctlError(f"{context} failed ({exc})") from None
        if result.exit_code != 0:
            detail = result.stderr.decode(errors="replace").strip()
            raise MeshctlError(
                f"{context} exited with code {result.exit_code}" + (f": {detail}" if detail else "")
            )
        return result.stdout


def open_pod_sources(
    target: str | None,
    selector: str | None,
    namespace: str | None,
    kubeconfig: str | None,
    context: str | None,
    admin_port: int,
) -> list[DumpSource]:
    """DumpSources for the pods `proxy-config` names: one pod target, or every `-l` match."""
    client = load_client(kubeconfig, context)
    pods = client.resolve_pods(target, selector, namespace)
    return [PodSource(client, pod.name, pod.namespace, admin_port) for pod in pods]


@contextlib.contextmanager
def _handshake_timeout(seconds: float) -> Iterator[None]:
    """Bound the websocket connect and handshake, which the client leaves unbounded.

    websocket-client reads its timeout from a process-wide default when the socket is created,
    so set it for the duration of one handshake, under a lock, and put the old value back.
    """
    import websocket

    with _handshake_lock:
        previous = websocket.getdefaulttimeout()
        websocket.setdefaulttimeout(seconds)
        try:
            yield
        finally:
            websocket.setdefaulttimeout(previous)


def _close_gracefully(end: socket.socket) -> None:
    """Say we are done writing, then read until the client's relay thread closes its side.

    Closing a socketpair end that still has unread data makes the other end's next read fail
    with ECONNRESET; in the client's relay thread that is an uncaught exception, the thread dies
    without closing the websocket, and the API server keeps the stream open. A peer that goes on
    talking (a gRPC server sending pings) is read until the socket timeout.
    """
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_WR)
        while end.recv(64 * 1024):
            pass


def _splice(one: socket.socket, other: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes or `stop` is set."""
    peers = {one.fileno(): other, other.fileno(): one}
    while not stop.is_set():
        readable, _, _ = select.select([one, other], [], [], POLL_INTERVAL)
        for source in readable:
            data = source.recv(64 * 1024)
            if not data:
                return
            peers[source.fileno()].sendall(data)


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


def _stream_refusal(exc: ApiException) -> str:
    """Why a websocket upgrade failed: the Status message the API server sent, if any.

    The client reports a refused upgrade as ApiException(status=0) whose reason holds the
    status line, the headers and the body separated by ` -+-+- `.
    """
    parts = str(exc.reason or "").split(" -+-+- ")
    message = _status_message(parts[-1]) if len(parts) > 1 else None
    status_line = parts[0].removeprefix("Handshake status ").strip()
    if message:
        return f"{message} (HTTP {status_line})"
    return status_line or "the API server refused the stream"


def _status_message(body: str | bytes | None) -> str | None:
    """The `message` of a Kubernetes Status document, or None if the body is not one."""
    try:
        document = json.loads(body or "")
    except ValueError:
        return None
    return document.get("message") if isinstance(document, dict) else None


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
