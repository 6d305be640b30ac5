"""The contract between translation and the ADS server.

The server knows nothing about Istio resources: it hands every accepted set of resources to a
`Translate` function once, and then asks the resulting `MeshConfig` what each connected proxy
should hold. Keeping this seam narrow lets the real translator, a test fake, or a benchmark's
raw replay plug in without the server changing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from envoy.config.core.v3 import base_pb2 as core_pb2

from meshctl.config.resource import Resource
from meshctl.errors import MeshctlError
from meshctl.xds.resources import ProxyResources


class UnknownProxyError(MeshctlError):
    """The node names no workload in the registry, so there is nothing to send it yet."""


class MeshConfig(Protocol):
    """One accepted configuration generation; immutable; cheap to query repeatedly."""

    version: str

    def resources_for(self, node: core_pb2.Node) -> ProxyResources:
        """Everything this proxy should hold, by type URL then name; may raise UnknownProxyError."""
        ...


Translate = Callable[[Sequence[Resource]], MeshConfig]
