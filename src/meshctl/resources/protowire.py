"""Protobuf's wire format, as far as assembling messages from serialized pieces needs it.

A message on the wire is its fields one after another, in any order, and a repeated message
field is its entries one after another, each a tag, a length and the entry's bytes. So a
message can be assembled from pieces serialized once and shared: a route configuration from
its virtual hosts (generate.routebytes), a discovery response from its resources
(xds.encoding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = ["field", "tags", "varint"]


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint."""
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_ONE_BYTE = [bytes((value,)) for value in range(0x80)]  # most lengths and tags, made once


def tags(message: type[Message], *names: str) -> tuple[bytes, ...]:
    """The tags of the message class's length-delimited fields (strings, bytes, submessages),
    by name, from its own descriptor."""
    fields = message.DESCRIPTOR.fields_by_name
    return tuple(varint(fields[name].number << 3 | 2) for name in names)


def field(tag: bytes, payload: bytes) -> bytes:
    """One length-delimited field: its tag, the payload's length, the payload."""
    return tag + varint(len(payload)) + payload
