"""Route configurations assembled from serialized virtual hosts.

A protobuf message on the wire is its fields one after the other, and deterministic
serialization writes them in field-number order. A RouteConfiguration's virtual hosts are its
field 2, each the tag byte, a varint length and the VirtualHost's own bytes; its only field
before them is `name` (1). So a route configuration is the serialization of its other fields
with the serialized virtual hosts spliced in after the name, byte for byte what serializing the
whole message gives. A virtual host is serialized once, when it is built; a route
configuration of a thousand services changed in one of them is a join of bytes already made,
and its version a hash of the hosts' digests rather than of the megabyte they make.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2

from meshctl.resources import ROUTE, Packed
from meshctl.resources.protowire import field, varint

__all__ = ["AssembledRoutes", "SerializedHost"]

_VIRTUAL_HOSTS = route_pb2.RouteConfiguration.DESCRIPTOR.fields_by_name["virtual_hosts"]
_FIELD = operator.attrgetter("field")
_DIGEST = operator.attrgetter("digest")
_TAG = varint(_VIRTUAL_HOSTS.number << 3 | 2)  # length-delimited


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


class AssembledRoutes:
    """A RouteConfiguration as its other fields (`template`, without virtual hosts) and its
    serialized virtual hosts in the order sent. Packed once, parsed only when read as a
    message (translate's output, diff's field paths, explain): serve never parses it."""

    __slots__ = ("_message", "_packed", "_prefix", "_suffix", "hosts", "name")

    def __init__(self, template: route_pb2.RouteConfiguration, hosts: Sequence[SerializedHost]) -> None:
        if template.virtual_hosts:
            raise ValueError("the template of an assembled route configuration holds no virtual hosts")
        self.name = template.name
        self.hosts = tuple(hosts)
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

    def data(self) -> bytes:
        """The serialized RouteConfiguration (what serializing the message would give)."""
        return self._with(self.hosts)

    def _with(self, hosts: Sequence[SerializedHost]) -> bytes:
        """The serialized configuration with `hosts` as its virtual hosts."""
        return b"".join([self._prefix, *map(_FIELD, hosts), self._suffix])

    def packed(self) -> Packed:
        if self._packed is None:
            digest = hashlib.blake2b(self._prefix, digest_size=8)
            digest.update(b"".join(map(_DIGEST, self.hosts)))
            digest.update(self._suffix)
            self._packed = Packed(self.name, digest.hexdigest(), ROUTE, self.data())
        return self._packed

    def only(self, hosts: Sequence[SerializedHost]) -> route_pb2.RouteConfiguration:
        """This configuration with only `hosts` (some of its own) among its virtual hosts, parsed:
        what a comparison needs of the hosts that differ, without parsing those that do not."""
        return route_pb2.RouteConfiguration.FromString(self._with(hosts))

    @property
    def message(self) -> route_pb2.RouteConfiguration:
        """The RouteConfiguration itself, parsed once. Shared: never modify it."""
        if self._message is None:
            self._message = route_pb2.RouteConfiguration.FromString(self.packed().value)
        return self._message
