"""Route configurations assembled from serialized virtual hosts.

A protobuf message on the wire is its fields one after the other, and deterministic
serialization writes them in field-number order. A RouteConfiguration's virtual hosts are its
field 2, each the tag byte, a varint length and the VirtualHost's own bytes; its only field
before them is `name` (1). So a route configuration is the serialization of its other fields
with the serialized virtual hosts spliced in after the name, byte for byte what serializing the
whole message gives. A virtual host is serialized once, when it is built.

The hosts are held in blocks (meshctl.blocks), and a configuration changed in one host shares every
other block with the one before: its packed form is those pieces, never joined for itself
(the response encoder writes them straight into the response), and its version is a hash of
the blocks' digests, each a hash of its hosts' digests. So the cost of a one-host change is
one block, whatever the number of hosts; and the version is a function of the content alone,
the same whether the configuration was built whole or updated in place (the blocks being cut
from the first host on either way).
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2

from meshctl.blocks import Blocks
from meshctl.resources import ROUTE, Packed
from meshctl.resources.protowire import field, tags, varint

__all__ = ["AssembledRoutes", "HostBlocks", "SerializedHost"]

_FIELD = operator.attrgetter("field")
_DIGEST = operator.attrgetter("digest")
_FIELDS = operator.attrgetter("fields")
_SIZE = operator.attrgetter("size")
(_TAG,) = tags(route_pb2.RouteConfiguration, "virtual_hosts")


@dataclass(frozen=True, slots=True, eq=False)
class SerializedHost:
    """A virtual host as it sits in a route configuration: its field bytes (tag, length and
    the VirtualHost) and a digest of them, from which the configuration's version is made."""

    name: str
    field: bytes
    digest: bytes

    @classmethod
    def of(cls, vhost: rc.VirtualHost) -> SerializedHost:
        data = vhost.SerializeToString(deterministic=True)
        encoded = field(_TAG, data)
        return cls(vhost.name, encoded, hashlib.blake2b(encoded, digest_size=8).digest())

    @classmethod
    def outbound(cls, name: str, domains: Sequence[str], routes: Sequence[bytes],
                 counts: bool = True) -> SerializedHost:
        """The virtual host `VirtualHost(name, domains, routes, include_request_attempt_count)`,
        every outbound one of a sidecar, serialized from its fields without building it:
        they are fields 1, 2, 3 and 14, written in that order; `routes` are serialized (most
        are rendered from templates: generate.routeshapes, never built). `counts` false
        (the proxy's proxyHeaders disable attempt counts) leaves field 14 out, as proto3 does."""
        data = b"".join([field(_HOST_NAME, name.encode()) if name else b"",
                         *(field(_HOST_DOMAIN, domain.encode()) for domain in domains),
                         *(field(_HOST_ROUTE, route) for route in routes),
                         _COUNTS_ATTEMPTS if counts else b""])
        encoded = field(_TAG, data)
        return cls(name, encoded, hashlib.blake2b(encoded, digest_size=8).digest())


_HOST_FIELDS = rc.VirtualHost.DESCRIPTOR.fields_by_name
_HOST_NAME, _HOST_DOMAIN, _HOST_ROUTE = tags(rc.VirtualHost, "name", "domains", "routes")
_COUNTS_ATTEMPTS = varint(_HOST_FIELDS["include_request_attempt_count"].number << 3) + b"\x01"  # a varint: true


@dataclass(frozen=True, slots=True, eq=False)
class _Summary:
    """A block of hosts as the configuration's pieces and version need it: their field bytes,
    their combined digest and length."""

    fields: tuple[bytes, ...]
    digest: bytes
    size: int

    @classmethod
    def of(cls, hosts: tuple[SerializedHost, ...]) -> _Summary:
        fields = tuple(map(_FIELD, hosts))
        digest = hashlib.blake2b(b"".join(map(_DIGEST, hosts)), digest_size=8).digest()
        return cls(fields, digest, sum(map(len, fields)))


class HostBlocks(Blocks[SerializedHost]):
    """Serialized virtual hosts in the order sent, in blocks (meshctl.blocks), each summed up
    once: replacing a few makes a new sequence sharing every untouched block, and its
    summary, with this one. `size` is the length of the hosts' field bytes, all together."""

    __slots__ = ("_summaries", "size")

    _summaries: tuple[_Summary, ...]
    size: int

    def _derive(self, before: HostBlocks | None, changed: Iterable[int]) -> None:
        blocks = self.blocks()
        if before is None:
            summaries = [_Summary.of(block) for block in blocks]
        else:
            summaries = list(before._summaries)
            for index in changed:
                summaries[index] = _Summary.of(blocks[index])
        self._summaries = tuple(summaries)
        self.size = sum(map(_SIZE, summaries))

    def digests(self) -> bytes:
        """The blocks' digests, one after the other: what the configuration's version hashes."""
        return b"".join(map(_DIGEST, self._summaries))

    def field_blocks(self) -> tuple[tuple[bytes, ...], ...]:
        """The hosts' field bytes, a tuple per block (shared, never joined here)."""
        return tuple(map(_FIELDS, self._summaries))


class AssembledRoutes:
    """A RouteConfiguration as its other fields (`template`, without virtual hosts) and its
    serialized virtual hosts in the order sent. Packed once, in pieces; parsed only when
    read as a message (translate's output, diff's field paths, explain): serve never parses
    it."""

    __slots__ = ("_message", "_packed", "_prefix", "_suffix", "hosts", "name")

    def __init__(self, template: route_pb2.RouteConfiguration, hosts: Iterable[SerializedHost]) -> None:
        if template.virtual_hosts:
            raise ValueError("the template of an assembled route configuration holds no virtual hosts")
        self.name = template.name
        self.hosts = hosts if isinstance(hosts, HostBlocks) else HostBlocks(hosts)
        whole = template.SerializeToString(deterministic=True)
        named = route_pb2.RouteConfiguration(name=template.name).SerializeToString(deterministic=True)
        self._prefix, self._suffix = named, whole[len(named):]
        self._packed: Packed | None = None
        self._message: route_pb2.RouteConfiguration | None = None

    @classmethod
    def of(cls, config: route_pb2.RouteConfiguration) -> AssembledRoutes:
        """A route configuration built as a message (a gateway's), in assembled form."""
        template = route_pb2.RouteConfiguration()
        template.CopyFrom(config)
        del template.virtual_hosts[:]
        return cls(template, [SerializedHost.of(vhost) for vhost in config.virtual_hosts])

    def packed(self) -> Packed:
        """The configuration packed as its pieces: the fields before the virtual hosts, each
        block of hosts, the fields after; versioned by a hash of the fields around the hosts
        and the blocks' digests (see the module docstring)."""
        if self._packed is None:
            digest = hashlib.blake2b(self._prefix, digest_size=8)
            digest.update(self.hosts.digests())
            digest.update(self._suffix)
            blocks = ((self._prefix,), *self.hosts.field_blocks(), (self._suffix,))
            size = len(self._prefix) + self.hosts.size + len(self._suffix)
            self._packed = Packed.assembled(self.name, digest.hexdigest(), ROUTE, blocks, size)
        return self._packed

    def only(self, hosts: Sequence[SerializedHost]) -> route_pb2.RouteConfiguration:
        """This configuration with only `hosts` (some of its own) among its virtual hosts, parsed:
        what a comparison needs of the hosts that differ, without parsing those that do not."""
        return route_pb2.RouteConfiguration.FromString(b"".join([self._prefix, *map(_FIELD, hosts), self._suffix]))

    @property
    def message(self) -> route_pb2.RouteConfiguration:
        """The RouteConfiguration itself, parsed once. Shared: never modify it."""
        if self._message is None:
            self._message = route_pb2.RouteConfiguration.FromString(self.packed().value)
        return self._message
