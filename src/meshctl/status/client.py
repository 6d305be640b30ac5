"""Ask a control plane istiod's debug questions over ADS, as istioctl does.

istiod (and `meshctl serve`) answer the pseudo type URLs `istio.io/debug/syncz` and
`istio.io/debug/config_dump` on the ordinary `StreamAggregatedResources` stream. The client
identifies as a debug client (node metadata `GENERATOR: event`), so neither lists it among the
proxies. Each question gets a stream of its own, which is closed once the answer is in: one
request, one response, nothing left subscribed.

Transport: plaintext (istiod's 15010, `meshctl serve`) or TLS without certificate verification
plus a Kubernetes bearer token on every call (istiod's 15012; see `tlsrelay`). Answers about a
large mesh are large, so the receive limit is raised well above gRPC's 4 MiB default.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from meshctl.errors import MeshctlError
from meshctl.model.node import SIDECAR, node_id
from meshctl.status.tlsrelay import TlsRelay
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.enable_http_proxy", 0),
]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A control plane to ask: how messages name it, where to dial, and how.

    `tls` dials with TLS and no certificate check, sending `server_name` as SNI; `token` is sent
    as `authorization: Bearer <token>` on every call.
    """

    name: str
    address: str
    tls: bool = False
    token: str | None = None
    server_name: str = ""


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
        self._relay: TlsRelay | None = None

    def __enter__(self) -> DebugClient:
        address = self.endpoint.address
        if self.endpoint.tls:
            host, port = _split_address(address)
            self._relay = self._stack.enter_context(TlsRelay(host, port, self.endpoint.server_name or host, self.timeout))
            address = self._relay.address
        channel = self._stack.enter_context(grpc.insecure_channel(address, options=_CHANNEL_OPTIONS))
        self._stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def ask(self, type_url: str, resource_names: Sequence[str] = (), timeout: float | None = None) -> Any:
        """The control plane's DiscoveryResponse to one request of `type_url`."""
        timeout = self.timeout if timeout is None else timeout
        request = discovery_pb2.DiscoveryRequest(node=self.node, type_url=type_url, resource_names=list(resource_names))
        answered = threading.Event()

        def requests() -> Any:
            yield request
            answered.wait()  # keep the stream open: some servers end it when the client half-closes

        call = self._stub.StreamAggregatedResources(requests(), timeout=timeout, metadata=self._metadata)
        try:
            for response in call:
                if response.type_url == type_url:
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
            relayed = self._relay.failures if self._relay is not None else []
            failure = (list(self.transport_failures[-1:]) or relayed[-1:] or [details])[0]
            if "refused" not in failure.lower():  # something answered, perhaps in the other protocol
                failure += (
                    " (for a plaintext port, istiod's 15010 or meshctl serve, add --plaintext)"
                    if self.endpoint.tls
                    else " (for istiod's TLS port 15012 leave out --plaintext)"
                )
            return f"cannot reach {where}: {failure}"
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


class UnknownToControlPlane(MeshctlError):
    """The control plane answered that it knows nothing of what was asked about (NOT_FOUND)."""


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise MeshctlError(f"{address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
