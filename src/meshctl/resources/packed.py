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
import itertools
from collections.abc import Iterable, Mapping, Sequence

from google.protobuf import any_pb2
from google.protobuf.message import Message

from meshctl.resources.kinds import type_url_of

__all__ = ["Packed", "Placeholder", "ProxyResources", "by_name"]


class Packed:
    """One resource: its name, a content-derived version, and the type URL and serialized
    message every stream shares (what an `Any` of it holds).

    The serialized message is kept as pieces whose concatenation it is, in blocks: one piece
    for a message serialized whole, a piece per virtual host for a route configuration
    assembled from them (generate.routebytes). Joined only by who needs the bytes in one
    object (`value`); the response encoder writes the pieces straight into the response, so
    a route configuration of ten thousand hosts changed in one is never joined for itself.
    Immutable, and equal to another of the same name, version, type URL and bytes."""

    __slots__ = ("_blocks", "name", "size", "type_url", "version")

    name: str
    version: str
    type_url: str
    size: int
    """The length of the serialized message."""
    _blocks: tuple[Sequence[bytes], ...]

    def __init__(self, name: str, version: str, type_url: str, value: bytes) -> None:
        self._set(name, version, type_url, ((value,),), len(value))

    @classmethod
    def of(cls, name: str, message: Message) -> Packed:
        """Serialize once (deterministically, so equal content gives an equal version)."""
        return cls.serialized(name, type_url_of(message), message.SerializeToString(deterministic=True))

    @classmethod
    def serialized(cls, name: str, type_url: str, value: bytes) -> Packed:
        """A message already serialized deterministically, versioned by its bytes."""
        return cls(name, hashlib.blake2b(value, digest_size=8).hexdigest(), type_url, value)

    @classmethod
    def assembled(cls, name: str, version: str, type_url: str, blocks: tuple[Sequence[bytes], ...],
                  size: int) -> Packed:
        """A resource whose serialized message is the pieces of `blocks`, one after the
        other, `size` bytes in all (the caller knows it without joining them)."""
        packed = cls.__new__(cls)
        packed._set(name, version, type_url, blocks, size)
        return packed

    def _set(self, name: str, version: str, type_url: str, blocks: tuple[Sequence[bytes], ...], size: int) -> None:
        setattr_ = object.__setattr__  # past the guard below, as a frozen dataclass sets its fields
        setattr_(self, "name", name)
        setattr_(self, "version", version)
        setattr_(self, "type_url", type_url)
        setattr_(self, "_blocks", blocks)
        setattr_(self, "size", size)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a packed resource is immutable: cannot set {name}")

    @property
    def value(self) -> bytes:
        """The serialized message in one object (joined on each call when it is in pieces)."""
        blocks = self._blocks
        if len(blocks) == 1 and len(blocks[0]) == 1:
            return blocks[0][0]
        return b"".join(self.pieces())

    def pieces(self) -> Iterable[bytes]:
        """The serialized message's pieces, in order, without joining them."""
        return itertools.chain.from_iterable(self._blocks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packed):
            return NotImplemented
        return (type(self) is type(other) and self.name == other.name and self.version == other.version
                and self.type_url == other.type_url and self.size == other.size and self.value == other.value)

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.type_url, self.size))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, version={self.version!r}, type_url={self.type_url!r}, "
                f"size={self.size})")

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
