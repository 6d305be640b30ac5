"""Ask a control plane istiod's debug questions over ADS, as istioctl does.

istiod (and `meshctl serve`) answer the pseudo type URLs `istio.io/debug/syncz` and
`istio.io/debug/config_dump` on the ordinary `StreamAggregatedResources` stream. The client
identifies as a debug client (node metadata `GENERATOR: event`), so neither lists it among the
proxies. Each question gets a stream of its own, which is closed once the answer is in: one
request, one response, nothing left subscribed.

Transport: plaintext (istiod's 15010, `meshctl serve`), or TLS with gRPC's own credentials
(istiod's 15012): the server's certificate is verified against the mesh's root and must name
the expected authority, and a Kubernetes bearer token (or a client certificate) says who asks.
istioctl skips that verification; here skipping it takes `--insecure`, which pins whatever
certificate the server shows for the one connection. Answers about a large mesh are large, so
the receive limit is raised well above gRPC's 4 MiB default.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from meshctl.calllog import timed
from meshctl.errors import MeshctlError
from meshctl.model.node import SIDECAR, node_id

__all__ = [
    "DebugClient",
    "Endpoint",
    "MAX_MESSAGE_BYTES",
    "SKIP_VERIFICATION",
    "Tls",
    "UnknownToControlPlane",
    "debug_node",
]

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.enable_http_proxy", 0),
]
SKIP_VERIFICATION = "--insecure"
_LAST_ERROR = re.compile(r"last error: [A-Z_]+: (?:ipv[46]:|unix:)?\S+?:\d+: (?P<error>.*)$", re.S)
# BoringSSL's reason for a failed handshake: "...:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: unable to get ..."
_TLS_FAILURE = re.compile(r"SSL_ERROR_SSL: error:[0-9a-fA-F]+:[^:]*:[^:]*:(?P<code>[A-Z0-9_]+): (?P<reason>[^:]+)")


@dataclass(frozen=True, slots=True)
class Tls:
    """How to check a control plane's certificate, and the client certificate to show, if any.

    `roots` (PEM) are the CAs its certificate must chain to, `roots_from` says where they came
    from (for messages); None trusts the certificate the server presents (`--insecure`).
    `authority` is the name the certificate must carry, sent as SNI and `:authority`.
    """

    authority: str
    roots: bytes | None = None
    roots_from: str = ""
    client_chain: bytes | None = None
    client_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A control plane to ask: how messages name it, where to dial, and how.

    `tls` None dials plaintext; `token` is sent as `authorization: Bearer <token>` on every call.
    """

    name: str
    address: str
    tls: Tls | None = None
    token: str | None = None


def debug_node(namespace: str) -> base_pb2.Node:
    """The node a debug client presents: istiod routes `GENERATOR: event` to its status
    generator and never counts such a connection as a proxy."""
    node = base_pb2.Node(id=node_id(SIDECAR, "0.0.0.0", f"meshctl-{os.getpid()}.{namespace}", f"{namespace}.svc.cluster.local"))
    node.metadata.update({"GENERATOR": "event", "SERVICE_ACCOUNT": "default", "NAMESPACE": namespace})
    return node


class DebugClient:
    """A channel to one control plane, asking one debug question per stream.

    Use as a context manager. `timeout` bounds each question (connecting included) unless
    `ask` is given its own. `transport_failures` is where a tunnel under the channel (a
    Kubernetes port-forward) records why connections failed; gRPC itself only sees them close.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        namespace: str = "istio-system",
        timeout: float = 30.0,
        transport_failures: Sequence[str] = (),
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.transport_failures = transport_failures
        self.node = debug_node(namespace)
        self._metadata = (("authorization", f"Bearer {endpoint.token}"),) if endpoint.token else ()
        self._stack = contextlib.ExitStack()
        self._stub: Any = None

    def __enter__(self) -> DebugClient:
        tls = self.endpoint.tls
        if tls is None:
            channel = grpc.insecure_channel(self.endpoint.address, options=_CHANNEL_OPTIONS)
        else:
            roots, name = (tls.roots, tls.authority) if tls.roots is not None else self._pinned(tls)
            credentials = grpc.ssl_channel_credentials(roots, tls.client_key, tls.client_chain)
            options = [*_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", name),
                       ("grpc.default_authority", tls.authority)]
            channel = grpc.secure_channel(self.endpoint.address, credentials, options=options)
        self._stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._stack.enter_context(channel))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _pinned(self, tls: Tls) -> tuple[bytes, str]:
        """`--insecure`: the certificate the server presents, as the only root to trust, and a
        name it carries. gRPC has no switch to skip verification; trusting exactly this
        certificate for this one channel amounts to the same."""
        from meshctl.status.tlspeer import presented_certificate

        try:
            return presented_certificate(self.endpoint.address, tls.authority, self.timeout)
        except OSError as exc:
            failure = (list(self.transport_failures[-1:]) or [f"TLS to {self.endpoint.address} failed: {exc}"])[0]
            raise MeshctlError(f"cannot reach the control plane at {self.endpoint.name}: {failure}") from None

    def ask(self, type_url: str, resource_names: Sequence[str] = (), timeout: float | None = None) -> Any:
        """The control plane's DiscoveryResponse to one request of `type_url`."""
        timeout = self.timeout if timeout is None else timeout
        request = discovery_pb2.DiscoveryRequest(node=self.node, type_url=type_url, resource_names=list(resource_names))
        answered = threading.Event()

        def requests() -> Any:
            yield request
            answered.wait()  # keep the stream open: some servers end it when the client half-closes

        call = self._stub.StreamAggregatedResources(requests(), timeout=timeout, metadata=self._metadata)
        asked = f"ADS {type_url}{' ' + ','.join(resource_names) if resource_names else ''}"
        try:
            with timed(lambda: f"{asked} of the control plane at {self.endpoint.name} ({self.endpoint.address})") as outcome:
                for response in call:
                    if response.type_url == type_url:
                        outcome(f"{len(response.resources)} resources, {response.ByteSize()} bytes")
                        return response
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() is grpc.StatusCode.NOT_FOUND:
                raise UnknownToControlPlane(f"the control plane at {self.endpoint.name}: {exc.details()}") from None
            raise MeshctlError(self._explain(exc, type_url, timeout)) from None
        finally:
            answered.set()
            call.cancel()
        raise MeshctlError(f"the control plane at {self.endpoint.name} ended the stream without answering {type_url}")

    def _explain(self, exc: grpc.RpcError, type_url: str, timeout: float) -> str:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        details = (exc.details() if isinstance(exc, grpc.Call) else "") or str(exc)
        where = f"the control plane at {self.endpoint.name}"
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"{where} did not answer {type_url} within {timeout:g} s"
        if code is grpc.StatusCode.UNAVAILABLE:
            return f"cannot reach {where}: {self._unreachable(details)}"
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return (
                f"{where} refused {type_url}: {details} (istiod answers debug requests over TLS, port 15012, "
                "to a caller with a Kubernetes token; check -c/--kubeconfig and --context)"
            )
        if code is grpc.StatusCode.UNIMPLEMENTED:
            return f"{where} does not serve ADS (StreamAggregatedResources): {details}"
        if code is grpc.StatusCode.FAILED_PRECONDITION:
            return f"{where} cannot answer {type_url} yet: {details}"
        name = code.name if code is not None else "error"
        return f"{where} failed to answer {type_url}: {name}: {details}"


    def _unreachable(self, details: str) -> str:
        """Why the connection failed, in terms of the flags that would fix it."""
        tls = self.endpoint.tls
        details = _last_error(details)
        verification = _TLS_FAILURE.search(details)
        if tls is not None and "Hostname Verification" in details:
            return (f"its certificate does not name {tls.authority}; give the name it carries with --authority, "
                    f"or skip verification with {SKIP_VERIFICATION}")
        if tls is not None and verification and verification["code"] != "WRONG_VERSION_NUMBER":
            return (f"its certificate does not verify against the mesh's root ({tls.roots_from}): "
                    f"{verification['reason'].strip()}; give the root with --cert-dir DIR (DIR/root-cert.pem), "
                    f"or skip verification with {SKIP_VERIFICATION}")
        failure = (list(self.transport_failures[-1:]) or [details])[0]
        if "refused" in failure.lower():
            return failure
        if tls is not None and tls.client_chain and "closed" in failure.lower():
            return f"{failure} (it may have refused the client certificate of --cert-dir)"
        if tls is not None:  # something answered, perhaps in the other protocol
            return f"{failure} (for a plaintext port, istiod's 15010 or meshctl serve, add --plaintext)"
        return f"{failure} (for istiod's TLS port 15012 leave out --plaintext)"


def _last_error(details: str) -> str:
    """gRPC's connection failure without its preamble: "failed to connect to all addresses;
    last error: UNKNOWN: ipv4:127.0.0.1:15012: Connection refused" says "Connection refused"."""
    found = _LAST_ERROR.search(details)
    return found["error"] if found else details


class UnknownToControlPlane(MeshctlError):
    """The control plane answered that it knows nothing of what was asked about (NOT_FOUND)."""
