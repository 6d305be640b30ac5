"""The xDS stream state machine without gRPC: a fake snapshot cache and fake Envoys.

go-control-plane tests its server with a mock stream and a mock cache; here the `Stream` classes
already take requests and config changes as method calls and return the responses to write, so
a test drives them directly. `FakeCache` is what a stream needs from the server (the `Host`
protocol), holding the fake translator's generations; `SotwEnvoy` and `DeltaEnvoy` build the
requests an Envoy would send and decode the responses. Every call returns what the server would
write at that moment, so "nothing was sent" is an empty list, with no waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

import fake_mesh
from meshctl.model.node import ISTIO_NODES, SIDECAR, node_id
from meshctl.xds import status
from meshctl.xds.encoding import Encoder
from meshctl.xds.generation import Generation
from meshctl.xds.metrics import Metrics
from meshctl.xds.state import Shared
from meshctl.xds.stream import DeltaStream, Push, SotwStream

PROXY_METADATA = {"NAMESPACE": "default", "ISTIO_VERSION": "1.27.0", "CLUSTER_ID": "Kubernetes", "PROXY_CONFIG": {}}
DEBUG_METADATA = {"GENERATOR": "event", "NAMESPACE": "istio-system"}


class FakeCache:
    """The snapshot cache as a stream sees it: a current generation and the shared services.

    `load` accepts a new generation (the fake translator's, from documents); the test then wakes
    the streams it wants with `Envoy.wake`, as the real cache would through their queues.
    """

    def __init__(self) -> None:
        self.generation: Generation | None = None
        self.change_started = time.monotonic()
        self.nodes = ISTIO_NODES
        self.metrics = Metrics()
        self.control_plane = status.control_plane_identifier()
        self.encoder = Encoder()
        self.shared = Shared()
        self.debug_requests: list[discovery_pb2.DiscoveryRequest] = []

    def load(self, documents: Sequence[Mapping[str, Any]]) -> None:
        self.generation = fake_mesh.translate(fake_mesh.as_resources(documents))
        self.encoder.next_generation()
        self.shared.next_generation()
        self.change_started = time.monotonic()

    def debug_response(self, request: discovery_pb2.DiscoveryRequest) -> discovery_pb2.DiscoveryResponse | None:
        self.debug_requests.append(request)
        return discovery_pb2.DiscoveryResponse(type_url=request.type_url, nonce=f"debug-{len(self.debug_requests)}")


def envoy_node(pod: str = "web", metadata: Mapping[str, Any] | None = None, node: str = "") -> base_pb2.Node:
    """The node a sidecar of pod `pod` in `default` presents (or one with the id `node`)."""
    out = base_pb2.Node(id=node or node_id(SIDECAR, "127.0.0.1", f"{pod}.default", "default.svc.cluster.local"))
    out.metadata.update(dict(PROXY_METADATA if metadata is None else metadata))
    return out


def _error(message: str) -> status_pb2.Status | None:
    return status_pb2.Status(code=3, message=message) if message else None


class SotwEnvoy:
    """A fake Envoy on one State-of-the-World stream."""

    def __init__(self, cache: FakeCache, pod: str = "web", metadata: Mapping[str, Any] | None = None,
                 node: str = "") -> None:
        self.node = envoy_node(pod, metadata, node)
        self.stream = SotwStream(cache, self.node, "fake-peer")

    def send(self, type_url: str, names: Iterable[str] = (), version: str = "", nonce: str = "",
             error: str = "") -> list[discovery_pb2.DiscoveryResponse]:
        request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names), version_info=version,
                                                 response_nonce=nonce, node=self.node, error_detail=_error(error))
        return self._decode(self.stream.on_request(request))

    def ack(self, response: discovery_pb2.DiscoveryResponse, names: Iterable[str] = ()
            ) -> list[discovery_pb2.DiscoveryResponse]:
        return self.send(response.type_url, names, response.version_info, response.nonce)

    def nack(self, response: discovery_pb2.DiscoveryResponse, message: str, names: Iterable[str] = (),
             version: str = "") -> list[discovery_pb2.DiscoveryResponse]:
        """Reject `response`, reporting the last version accepted (as Envoy does)."""
        return self.send(response.type_url, names, version, response.nonce, error=message)

    def wake(self) -> list[discovery_pb2.DiscoveryResponse]:
        """The cache's notice of a new generation."""
        return self._decode(self.stream.on_config())

    @staticmethod
    def _decode(pushes: list[Push]) -> list[discovery_pb2.DiscoveryResponse]:
        out = [discovery_pb2.DiscoveryResponse.FromString(push.payload) for push in pushes]
        assert [r.type_url for r in out] == [push.type_url for push in pushes]
        return out


class DeltaEnvoy:
    """A fake Envoy on one incremental (Delta) stream."""

    def __init__(self, cache: FakeCache, pod: str = "web") -> None:
        self.node = envoy_node(pod)
        self.stream = DeltaStream(cache, self.node, "fake-peer")

    def send(self, type_url: str, subscribe: Iterable[str] = (), unsubscribe: Iterable[str] = (), nonce: str = "",
             error: str = "", initial: Mapping[str, str] | None = None) -> list[discovery_pb2.DeltaDiscoveryResponse]:
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url, resource_names_subscribe=list(subscribe), resource_names_unsubscribe=list(unsubscribe),
            response_nonce=nonce, initial_resource_versions=dict(initial or {}), node=self.node,
            error_detail=_error(error),
        )
        return self._decode(self.stream.on_request(request))

    def ack(self, response: discovery_pb2.DeltaDiscoveryResponse) -> list[discovery_pb2.DeltaDiscoveryResponse]:
        return self.send(response.type_url, nonce=response.nonce)

    def nack(self, response: discovery_pb2.DeltaDiscoveryResponse, message: str
             ) -> list[discovery_pb2.DeltaDiscoveryResponse]:
        return self.send(response.type_url, nonce=response.nonce, error=message)

    def wake(self) -> list[discovery_pb2.DeltaDiscoveryResponse]:
        return self._decode(self.stream.on_config())

    @staticmethod
    def _decode(pushes: list[Push]) -> list[discovery_pb2.DeltaDiscoveryResponse]:
        return [discovery_pb2.DeltaDiscoveryResponse.FromString(push.payload) for push in pushes]
