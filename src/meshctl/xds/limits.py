"""What one client may ask of serve, and how a request beyond it is refused.

Anyone who can reach the xDS port can send requests, so what a request may ask for is bounded,
by limits a real mesh never reaches: the work and memory a request costs stay small whatever it
names, and nothing it causes outlives its stream.

- `MAX_REQUEST_BYTES` (4 MiB, gRPC's default): a request's encoded size. Envoy's largest, a SotW
  EDS request naming every cluster of a sidecar with 20,000 clusters, is about 1.2 MB.
- `MAX_NAMES` (100,000): names one type's subscription may hold (a SotW request, or all of a
  Delta stream's subscribes together).
- `MAX_NAME_BYTES` (1,024): one resource name. Envoy's names are built from a host name (at most
  253 bytes), a port and a subset name.
- `MAX_WATCHES` (16): resource types one stream may subscribe to (meshctl serves 4; Envoy knows
  about a dozen).
- `MAX_UNDEFINED_ANSWERED` (100): names the proxy's config does not define that one response
  answers (an empty placeholder in SotW, a removal in Delta). A real Envoy names few: only
  resources of a change it has not applied yet. Names beyond it stay subscribed and are answered
  once the config defines them.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import DecodeError, Message

from meshctl.errors import MeshctlError

__all__ = [
    "LARGE_BYTES",
    "MAX_NAMES",
    "MAX_NAME_BYTES",
    "MAX_REQUEST_BYTES",
    "MAX_UNDEFINED_ANSWERED",
    "MAX_WATCHES",
    "Names",
    "RECENT_BYTES",
    "Request",
    "RequestRefused",
    "SLICE",
    "check_name",
    "check_names",
    "read",
]

# What a stream reads: a SotW or a Delta request.
Request: TypeAlias = discovery_pb2.DiscoveryRequest | discovery_pb2.DeltaDiscoveryRequest

MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_NAMES = 100_000
MAX_NAME_BYTES = 1024
MAX_WATCHES = 16
MAX_UNDEFINED_ANSWERED = 100
# Requests at least this large have their names read slice by slice (Names.gather).
LARGE_BYTES = 64 * 1024


class RequestRefused(MeshctlError):
    """A request beyond the limits: the stream ends with gRPC status `status` and this message."""

    def __init__(self, message: str, status: str = "RESOURCE_EXHAUSTED") -> None:
        super().__init__(message)
        self.status = status


class _Canonical:
    """Name sets already checked and still subscribed somewhere, each the one copy of its content.

    Every ACK repeats its stream's subscription, and thousands of streams subscribe alike, so a
    request's names are mostly a set some watch holds already. Finding it costs a fifth of
    interning and checking the names again, and hands every stream the very same object (a
    subscription compared with itself is unchanged at once, see Watch.set_names). Sets are held
    weakly: one no watch holds any more is gone with it, so nothing a client asked outlives it.
    """

    def __init__(self) -> None:
        self._by_hash: dict[int, list[weakref.ref[frozenset[str]]]] = {}

    def get(self, given: frozenset[str]) -> frozenset[str] | None:
        for ref in self._by_hash.get(hash(given), ()):
            found = ref()
            if found is not None and found == given:
                return found
        return None

    def add(self, checked: frozenset[str]) -> frozenset[str]:
        key = hash(checked)

        def gone(ref: weakref.ref[frozenset[str]]) -> None:
            refs = self._by_hash.get(key)
            if refs is not None:
                refs.remove(ref)
                if not refs:
                    del self._by_hash[key]

        self._by_hash.setdefault(key, []).append(weakref.ref(checked, gone))
        return checked


_canonical = _Canonical()


def check_names(names: Iterable[str]) -> frozenset[str]:
    """The names as a set of interned strings (every proxy names the same resources: thousands of
    streams share one copy of each, and one copy of each set while any holds it: see
    _Canonical), refused beyond the limits."""
    given = frozenset(names)
    found = _canonical.get(given)
    if found is not None:
        return found
    wanted = frozenset(map(sys.intern, given))
    if len(wanted) > MAX_NAMES:
        raise RequestRefused(f"a subscription may name at most {MAX_NAMES} resources of one type")
    # A name of n characters has at most 4n bytes: encode only when one might be too long.
    if wanted and max(map(len, wanted)) * 4 > MAX_NAME_BYTES:
        check_name(max(wanted, key=lambda name: len(name.encode())), "a resource name")
    return _canonical.add(wanted)


def check_name(name: str, what: str) -> None:
    if len(name.encode()) > MAX_NAME_BYTES:
        raise RequestRefused(f"{what} may be at most {MAX_NAME_BYTES} bytes long", "INVALID_ARGUMENT")


# Names read between two yields to the event loop when a request is large.
SLICE = 1024


@dataclass(frozen=True, slots=True)
class Names:
    """The names a request carries, read and checked: `subscribe` (a SotW request's names, a Delta
    request's subscribe), Delta's `unsubscribe` and `initial` versions."""

    subscribe: frozenset[str] = frozenset()
    unsubscribe: frozenset[str] = frozenset()
    initial: Mapping[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.subscribe) + len(self.unsubscribe) + len(self.initial)

    @classmethod
    def of(cls, request: Request) -> Names:
        """At once: for requests known to be small, and for tests."""
        if isinstance(request, discovery_pb2.DeltaDiscoveryRequest):
            initial = request.initial_resource_versions
            if len(initial) > MAX_NAMES:
                raise RequestRefused(f"initial_resource_versions may name at most {MAX_NAMES} resources")
            check_names(initial)
            return cls(check_names(request.resource_names_subscribe), check_names(request.resource_names_unsubscribe),
                       dict(initial))
        return cls(check_names(request.resource_names))

    @classmethod
    async def gather(cls, request: Request) -> Names:
        """Slice by slice, yielding to the event loop in between: a request of 4 MiB names
        100,000 resources, and reading them at once would hold up every other stream."""
        if isinstance(request, discovery_pb2.DeltaDiscoveryRequest):
            if len(request.initial_resource_versions) > MAX_NAMES:
                raise RequestRefused(f"initial_resource_versions may name at most {MAX_NAMES} resources")
            initial: dict[str, str] = {}
            keys = list(request.initial_resource_versions)
            for start in range(0, len(keys), SLICE):
                await asyncio.sleep(0)
                check_names(keys[start:start + SLICE])
                initial.update((k, request.initial_resource_versions[k]) for k in keys[start:start + SLICE])
            return cls(await _gathered(request.resource_names_subscribe), await _gathered(request.resource_names_unsubscribe),
                       initial)
        return cls(await _gathered(request.resource_names))


async def _gathered(names: Sequence[str]) -> frozenset[str]:
    if len(names) > MAX_NAMES:
        raise RequestRefused(f"a subscription may name at most {MAX_NAMES} resources of one type")
    if len(names) <= SLICE:
        return check_names(names)
    gathered: set[str] = set()
    for start in range(0, len(names), SLICE):
        await asyncio.sleep(0)
        gathered.update(check_names(names[start:start + SLICE]))
    return frozenset(gathered)


# Bytes of requests `read` keeps with their decoded form (see _Recent).
RECENT_BYTES = 256 * 1024


class _Recent:
    """Requests lately read, by their bytes, decoded: the same ACK from every stream of a view.

    Streams of one view are pushed the same responses in the same order, so their ACKs carry
    the same version, the same nonce (each stream counts its own from 1) and the same names:
    byte for byte the same request. Reading its hundred names costs a request 10-20 µs, a tenth
    of the CPU a push to 1,000 proxies spends per proxy; hashing its bytes a fraction of that.
    Equal bytes are an equal request, so sharing the decoded one is exact; it is only ever read
    (a request carrying a node, each stream's first, is not kept: it is made into the stream's
    own). At most RECENT_BYTES of requests are kept, all dropped at once beyond it: a change
    needs one entry per view and type (a hundred views ran as fast with 256 KiB as with 1 MiB,
    which kept 3 MB more of RSS in a 40-change run).
    """

    def __init__(self) -> None:
        self._found: dict[bytes, tuple[Message, Names]] = {}
        self._size = 0

    def get(self, message: type[Message], raw: bytes) -> tuple[Message, Names] | None:
        found = self._found.get(raw)
        return found if found is not None and type(found[0]) is message else None

    def add(self, raw: bytes, decoded: tuple[Message, Names]) -> None:
        if self._size + len(raw) > RECENT_BYTES:
            self._found = {}
            self._size = 0
        self._found[raw] = decoded
        self._size += len(raw)


_recent = _Recent()


async def read(message: type[Message], raw: bytes) -> tuple[Message, Names | RequestRefused]:
    """A request from its bytes, with its names (or why they are refused)."""
    if len(raw) < LARGE_BYTES:
        found = _recent.get(message, raw)
        if found is not None:
            return found
    try:
        request = message.FromString(raw)
    except DecodeError as exc:
        return message(), RequestRefused(f"the request is not a {message.DESCRIPTOR.name}: {exc}", "INVALID_ARGUMENT")
    try:
        if len(raw) >= LARGE_BYTES:
            return request, await Names.gather(request)
        decoded = request, Names.of(request)
    except RequestRefused as exc:
        return request, exc
    if not request.HasField("node"):
        _recent.add(raw, decoded)
    return decoded
