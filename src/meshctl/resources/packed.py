"""The unit everything downstream of translation shares: Envoy resources packed once.

Translation produces, per proxy, a map from type URL to named resources. Each resource is
serialized exactly once and carries a content hash as its version, so the ADS server can share
the same bytes with every proxy that receives it, skip unchanged resources, and tell a restarted
Envoy that it already holds the current version. The bytes are kept as they are, not in an `Any`:
putting them in one copies them (a megabyte for the route configuration of a thousand services),
and the response encoder writes the `Any`'s two fields itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.protobuf import any_pb2
from google.protobuf.message import Message

from meshctl.resources.kinds import type_url_of

__all__ = ["Packed", "Placeholder", "ProxyResources", "by_name"]


@dataclass(frozen=True, slots=True)
class Packed:
    """One resource: its name, a content-derived version, and the type URL and serialized
    message every stream shares (what an `Any` of it holds)."""

    name: str
    version: str
    type_url: str
    value: bytes

    @classmethod
    def of(cls, name: str, message: Message) -> Packed:
        """Serialize once (deterministically, so equal content gives an equal version)."""
        value = message.SerializeToString(deterministic=True)
        return cls(name, hashlib.blake2b(value, digest_size=8).hexdigest(), type_url_of(message), value)

    def to_any(self) -> any_pb2.Any:
        """The resource as an `Any` message, for where a message is needed (a config dump):
        made on each call, and copying the bytes into it."""
        return any_pb2.Any(type_url=self.type_url, value=self.value)


class Placeholder(Packed):
    """An empty resource standing in for a name the config does not define (see
    Kind.placeholder). Made per subscription, never shared: whoever caches shared resources
    (the response encoder) leaves these out, so a client naming many unknown names leaves
    nothing behind once it is gone."""

    __slots__ = ()


ProxyResources = Mapping[str, Mapping[str, Packed]]
"""Everything one proxy should hold: type URL → resource name → resource."""


def by_name(items: Iterable[Packed]) -> dict[str, Packed]:
    """Resources keyed by name, keeping the first of duplicates (as Istio does)."""
    out: dict[str, Packed] = {}
    for item in items:
        out.setdefault(item.name, item)
    return out
