"""What the server serves from: one accepted generation of config, and how one is made.

The server knows nothing about Istio resources: it hands every accepted set of resources to a
`Translate` function once, and then asks the resulting `Generation` what each connected node
should hold (go-control-plane's snapshot, made on demand per node). Keeping this contract
narrow lets the real translator (meshctl.generate.translator), a test fake, or a benchmark's
raw replay plug in without the server changing; they meet it by shape, importing nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from envoy.config.core.v3 import base_pb2 as core_pb2

from meshctl.errors import GenerationError
from meshctl.resources import Packed, ProxyResources

if TYPE_CHECKING:
    from meshctl.config.resource import Resource  # not loaded by the agent's SDS server, which serves no config

__all__ = ["Generation", "Translate", "as_failure"]


class Generation(Protocol):
    """One accepted configuration generation; immutable; cheap to query repeatedly."""

    @property
    def version(self) -> str: ...

    def resources_for(self, node: core_pb2.Node) -> ProxyResources:
        """Everything this node should hold, by type URL then name; raises
        meshctl.errors.UnknownProxyError when the configuration has nothing for it (yet). Any
        other exception fails this node alone (see `as_failure`)."""
        ...

    def origins(self, resource: Packed) -> Sequence[str]:
        """The input objects `resource` was made from (`FILE:LINE: Kind namespace/name`), as far
        as known: a proxy's NACK of it is reported with them."""
        ...


def as_failure(exc: Exception) -> GenerationError:
    """A failure of `resources_for` as the server reports it: a GenerationError as raised (with
    the input objects it names), anything else by its type and message."""
    if isinstance(exc, GenerationError):
        return exc
    return GenerationError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


Translate = Callable[[Sequence["Resource"]], Generation]
