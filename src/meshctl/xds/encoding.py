"""Responses assembled from bytes: each resource encoded once, shared by every stream.

A SotW DiscoveryResponse carries its resources as `Any`s, a DeltaDiscoveryResponse as `Resource`s
(name, version, Any). Building one as a message copies every resource into it and then encodes
the whole, again for every stream it goes to. Here each resource's entry is encoded once per
configuration generation, and a response is the concatenation of those entries and a few small
fields: protobuf allows fields in any order, and a repeated message field is its entries one
after another, each a tag, a length and the bytes. A full CDS response of 300 clusters is built
in a tenth of the time, whatever the number of proxies.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from meshctl.resources import Packed, Placeholder
from meshctl.resources.protowire import field, tags, varint

__all__ = ["Encoder", "MAX_BODIES", "field", "varint"]


_S_VERSION, _S_RESOURCES, _S_TYPE, _S_NONCE, _S_CONTROL_PLANE = tags(
    discovery_pb2.DiscoveryResponse, "version_info", "resources", "type_url", "nonce", "control_plane")
_D_VERSION, _D_RESOURCES, _D_TYPE, _D_NONCE, _D_REMOVED, _D_CONTROL_PLANE = tags(
    discovery_pb2.DeltaDiscoveryResponse, "system_version_info", "resources", "type_url", "nonce",
    "removed_resources", "control_plane")
_R_NAME, _R_VERSION, _R_RESOURCE = tags(discovery_pb2.Resource, "name", "version", "resource")
_A_TYPE, _A_VALUE = tags(any_pb2.Any, "type_url", "value")


MAX_BODIES = 4096


class Encoder:
    """Response bytes from shared resource entries.

    Entries are cached by Packed object (kept alive by its entry, so its id cannot be reused)
    for the current and the previous configuration generation, like the translator's cache: an
    entry is kept from the second time a stream sends its resource, then reused by all.
    """

    def __init__(self) -> None:
        self._current: dict[tuple[int, bool], tuple[Packed, bytes]] = {}
        self._previous: dict[tuple[int, bool], tuple[Packed, bytes]] = {}
        self._bodies: dict[Hashable, bytes] = {}
        self._previous_bodies: dict[Hashable, bytes] = {}

    def next_generation(self) -> None:
        """A new configuration was accepted: entries unused since the one before are dropped."""
        self._previous, self._current = self._current, {}
        self._previous_bodies, self._bodies = self._bodies, {}

    def sotw(self, type_url: str, version: str, nonce: str, resources: Sequence[Packed],
             control_plane: bytes = b"", *, complete: bool = False, share: bool = True) -> bytes:
        """A serialized DiscoveryResponse. Its body (all but the nonce and the announcement) is
        built once for all streams sending the same resources: the version is a hash of what
        the client will hold, so with `complete` (all of it is sent) the version alone says
        what the body holds, else with the names of the resources sent. `share=False` for a
        response carrying one subscription's own placeholders."""
        key = ("sotw", type_url, version, None if complete else tuple(item.name for item in resources))
        body = self._body(key, share, lambda: b"".join(
            [field(_S_VERSION, version.encode()), field(_S_TYPE, type_url.encode()),
             *(self._entry(item, delta=False) for item in resources)]))
        return self._close(body, _S_NONCE, nonce, _S_CONTROL_PLANE, control_plane)

    def delta(self, type_url: str, version: str, nonce: str, resources: Sequence[Packed], removed: Sequence[str],
              control_plane: bytes = b"", *, share: bool = True) -> bytes:
        """A serialized DeltaDiscoveryResponse, its body shared as in `sotw`."""
        key = ("delta", type_url, version, tuple((item.name, item.version) for item in resources), tuple(removed))
        body = self._body(key, share, lambda: b"".join(
            [field(_D_VERSION, version.encode()), field(_D_TYPE, type_url.encode()),
             *(self._entry(item, delta=True) for item in resources),
             *(field(_D_REMOVED, name.encode()) for name in removed)]))
        return self._close(body, _D_NONCE, nonce, _D_CONTROL_PLANE, control_plane)

    def _body(self, key: Hashable, share: bool, build: Callable[[], bytes]) -> bytes:
        """A response body from the memo, which holds at most MAX_BODIES per generation: the
        bodies a normal mesh needs are a few per view and type, and clients that keep asking
        for new subsets between two changes must not grow it without end."""
        if not share:
            return build()
        body = self._bodies.get(key)
        if body is None:
            body = self._previous_bodies.get(key)
            if body is None:
                body = build()
            if len(self._bodies) >= MAX_BODIES:
                self._bodies = {}
            self._bodies[key] = body
        return body

    @staticmethod
    def _close(body: bytes, nonce_tag: bytes, nonce: str, control_plane_tag: bytes, control_plane: bytes) -> bytes:
        """A shared body plus one stream's own fields (fields may come in any order)."""
        if control_plane:
            return b"".join((body, field(nonce_tag, nonce.encode()), field(control_plane_tag, control_plane)))
        return body + field(nonce_tag, nonce.encode())

    def _entry(self, item: Packed, *, delta: bool) -> bytes:
        if type(item) is Placeholder:  # one subscription's own: nothing of it is kept
            return self._encode(item, delta)
        key = (id(item), delta)
        entry = self._current.get(key) or self._previous.get(key)
        if entry is None:
            # First use: remember the resource but not its bytes, so that a resource only one
            # proxy has (its inbound listener, say) is never held twice.
            self._current[key] = (item, b"")
            return self._encode(item, delta)
        if not entry[1]:
            entry = (item, self._encode(item, delta))
        self._current[key] = entry
        return entry[1]

    @staticmethod
    def _encode(item: Packed, delta: bool) -> bytes:
        """The resource's entry: the `Any` (its type URL and value, each left out when empty,
        as serializing the message does) in its Resource for Delta, in the response's field.
        Lengths are added up first, so the value, which may be a megabyte in pieces (a route
        configuration's virtual hosts), is copied once, straight from its pieces."""
        type_url = item.type_url.encode()
        head = [_A_TYPE, varint(len(type_url)), type_url] if type_url else []
        if item.size:
            head += [_A_VALUE, varint(item.size)]
        size = sum(map(len, head)) + item.size
        if not delta:
            return b"".join([_S_RESOURCES, varint(size), *head, *item.pieces()])
        own = b"".join([field(_R_NAME, item.name.encode()), field(_R_VERSION, item.version.encode()),
                        _R_RESOURCE, varint(size)])
        return b"".join([_D_RESOURCES, varint(len(own) + size), own, *head, *item.pieces()])
