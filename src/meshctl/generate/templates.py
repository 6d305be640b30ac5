"""Messages of one shape serialized once, then given each resource's own strings as bytes.

Most of what a mesh's proxy is sent repeats one shape per service: the same cluster, endpoint
or virtual host with a different host name, service name or namespace in a handful of string
fields. Building each as a protobuf message costs a wrapper and an arena allocation per field
set; serializing one built with marker strings in those fields, and then splicing each
resource's strings into the bytes, costs a join.

A `ByteTemplate` holds the serialized message as a tree of the submessages that hold a marker
(`slot(i)`): each is its tag and its fields, constant fields as bytes kept whole. Rendering
writes each string field with its markers replaced and recomputes the length of every
submessage enclosing one, so the bytes are those deterministic serialization of the message
with the same strings gives (fields stay in field-number order; map keys never hold markers,
so map entries keep their order). A marker may also sit in the message packed in an `Any`
(a transport socket's TLS context): the `Any`'s value is read as the message its type URL
names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from meshctl.resources.protowire import varint

__all__ = ["ByteTemplate", "ShapeTemplates", "slot"]

_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters: no real config holds them
_ANY = "google.protobuf.Any"


def slot(index: int) -> str:
    """The marker a template's message holds where value `index` goes."""
    return f"{_OPEN}{index}{_CLOSE}"


@dataclass(frozen=True, slots=True)
class _Text:
    """A string field holding markers: its tag, and its text as constant pieces (bytes) and
    value indexes, in order. Unless `present` (a plain proto3 string, neither in a oneof nor
    optional nor repeated), an empty result is left out, as serialization leaves it out."""

    tag: bytes
    pieces: tuple[bytes | int, ...]
    present: bool


@dataclass(frozen=True, slots=True)
class _Node:
    """A submessage holding markers: its tag and its fields (bytes, `_Text` or `_Node`)."""

    tag: bytes
    items: tuple[bytes | _Text | _Node, ...]


class ByteTemplate:
    """A message of one shape whose marked string fields each resource fills (see module).

    Where the values go and every enclosing length depend only on the values' lengths: the
    layout for each combination of lengths (few: names of a mesh come in few lengths) is made
    once, its constant bytes and lengths joined, and rendering is one join of it with the
    values."""

    __slots__ = ("_items", "_layouts", "slots")

    def __init__(self, marked: Message, slots: int) -> None:
        self._items = _items(marked.SerializeToString(deterministic=True), marked.DESCRIPTOR)
        self.slots = slots
        _check_indexes(self._items, slots)
        self._layouts: dict[tuple[int, ...], _Layout] = {}

    def render(self, values: Sequence[str]) -> bytes:
        """The message's bytes with `values[i]` where `slot(i)` was: byte for byte the
        deterministic serialization of the message holding those strings."""
        if len(values) != self.slots:
            raise ValueError(f"the template has {self.slots} slots, given {len(values)} values")
        encoded = [value.encode() for value in values]
        return self.render_encoded(encoded, tuple(map(len, encoded)))

    def render_encoded(self, encoded: list[bytes], sizes: tuple[int, ...]) -> bytes:
        """`render` of values already encoded (UTF-8), `sizes` their lengths: for templates
        given the same values, encoded once."""
        layout = self._layouts.get(sizes)
        if layout is None:
            if len(self._layouts) >= _MAX_LAYOUTS:
                self._layouts.clear()
            layout = self._layouts[sizes] = _Layout.of(_layout(self._items, sizes)[0])
        parts = layout.parts.copy()
        for position, index in layout.holes:
            parts[position] = encoded[index]
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class _Layout:
    """A template laid out for values of given lengths: its constant bytes (every enclosing
    length written) in runs, and the holes between them, each with the value it takes."""

    parts: list[bytes]
    holes: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, pieces: list[bytes | int]) -> _Layout:
        parts: list[bytes] = []
        holes: list[tuple[int, int]] = []
        for piece in pieces:
            if isinstance(piece, int):
                holes.append((len(parts), piece))
                parts.append(b"")
            elif parts and (not holes or holes[-1][0] != len(parts) - 1):
                parts[-1] += piece
            else:
                parts.append(piece)
        return cls(parts, tuple(holes))


class ShapeTemplates:
    """A generation's templates by shape: everything a few resources read but the strings
    they are given as values. The first resources of a shape are built as messages; the
    second is built again with markers for the values, as the shape's templates (a shape
    seen once, as many routes' are, costs no more than building it); the rest are rendered.

    A shape's templates are kept only if they give back, from the first resources' own
    values, the very bytes those serialize to: a value missed by the markers, or a choice the
    shape does not capture that the markers change, makes that shape always built (right,
    only slower). What the shape must hold is the caller's to get right: two resources of one
    shape must differ in the values alone."""

    __slots__ = ("_by_shape",)

    def __init__(self) -> None:
        self._by_shape: dict[Hashable, object] = {}
        """Each shape's templates, or None (it cannot have any), or _ONCE."""

    def serialized(self, shape: Hashable | None, values: Sequence[str], marks: Sequence[str],
                   build: Callable[[Sequence[str]], Sequence[Message]]) -> list[bytes]:
        """The deterministic serialization of `build(values)`, rendered when `shape` (None, or
        unhashable: never templated) was built before. `marks[i]` is the string `build` is given for
        value i to make the templates: `slot(i)`, or a string holding it (a URI's scheme
        and `slot(i)`, when the scheme is part of the shape)."""
        try:
            found = self._by_shape.get(shape, _UNSEEN) if shape is not None else None
        except TypeError:  # a shape holding something unhashable (a mapping in a policy)
            shape = found = None
        if isinstance(found, tuple):
            encoded = [value.encode() for value in values]
            sizes = tuple(map(len, encoded))
            return [template.render_encoded(encoded, sizes) for template in found]
        built = [message.SerializeToString(deterministic=True) for message in build(values)]
        if found is _UNSEEN:
            self._by_shape[shape] = _ONCE
        elif found is _ONCE:
            made = self._by_shape[shape] = _made(build(marks), len(values), values, built)
            if made is None:  # right, only slower: said where a developer looking for why can see it
                _log.debug("a %s shape is built each time: its templates do not give its bytes back", _kind(shape))
        return built


def _made(marked: Sequence[Message], slots: int, values: Sequence[str],
          built: list[bytes]) -> tuple[ByteTemplate, ...] | None:
    """Templates of the marked messages, if they give back `built` from `values`."""
    if len(marked) != len(built):
        return None
    try:
        templates = tuple(ByteTemplate(message, slots) for message in marked)
    except ValueError:  # a marker where no template can hold it (a map key, a bytes field)
        return None
    if [template.render(values) for template in templates] != built:
        return None
    return templates


def _kind(shape: Hashable) -> str:
    """What a shape is of, for a log line (shapes hold whole views: too long to print)."""
    return shape[0] if isinstance(shape, tuple) and shape and isinstance(shape[0], str) else type(shape).__name__


_log = logging.getLogger("meshctl.generate.templates")
_UNSEEN = object()
_ONCE = object()
"""A shape seen once: built, no templates made yet."""
_MAX_LAYOUTS = 1024


def _layout(items: tuple[bytes | _Text | _Node, ...], sizes: tuple[int, ...]) -> tuple[list[bytes | int], int]:
    """The items as constant bytes and value indexes, for values of these sizes, and their length."""
    parts: list[bytes | int] = []
    total = 0
    for item in items:
        if isinstance(item, bytes):
            parts.append(item)
            total += len(item)
            continue
        if isinstance(item, _Text):
            inner = list(item.pieces)
            size = sum(len(piece) if isinstance(piece, bytes) else sizes[piece] for piece in item.pieces)
            if not size and not item.present:
                continue
        else:
            inner, size = _layout(item.items, sizes)
        prefix = item.tag + varint(size)
        parts.append(prefix)
        parts.extend(inner)
        total += len(prefix) + size
    return parts, total


def _check_indexes(items: tuple[bytes | _Text | _Node, ...], slots: int) -> None:
    """Every marker names one of the `slots` values (a template may leave some unused)."""
    for item in items:
        if isinstance(item, _Text):
            for piece in item.pieces:
                if isinstance(piece, int) and not 0 <= piece < slots:
                    raise ValueError(f"a template marker for value {piece}, of {slots}")
        elif isinstance(item, _Node):
            _check_indexes(item.items, slots)


def _items(data: bytes, descriptor: Any) -> tuple[bytes | _Text | _Node, ...]:
    """The fields of a serialized message (of `descriptor`'s type): runs of fields without a
    marker as bytes, the others parsed."""
    items: list[bytes | _Text | _Node] = []
    constant = bytearray()
    position = 0
    type_url = ""
    while position < len(data):
        start = position
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type != 2:
            position = _skip(data, position, wire_type)
            constant += data[start:position]
            continue
        tag = data[start:position]
        length, position = _read_varint(data, position)
        payload = data[position:position + length]
        position += length
        found = _marked(descriptor, tag, number, payload, type_url)
        if descriptor.full_name == _ANY and number == 1:
            type_url = payload.decode()
        if found is None:
            constant += data[start:position]
            continue
        if constant:
            items.append(bytes(constant))
            constant.clear()
        items.append(found)
    if constant:
        items.append(bytes(constant))
    return tuple(items)


def _marked(descriptor: Any, tag: bytes, number: int, payload: bytes, type_url: str) -> _Text | _Node | None:
    """A length-delimited field holding a marker, parsed (None: it holds none). An `Any`'s
    value is read as the message its type URL (field 1, written before it) names."""
    if _OPEN.encode() not in payload:
        return None
    if descriptor.full_name == _ANY:
        if number != 2:
            raise ValueError("a template marker in an Any's type URL")
        return _Node(tag, _items(payload, descriptor_pool.Default().FindMessageTypeByName(type_url.rsplit("/", 1)[-1])))
    if descriptor.GetOptions().map_entry and number == 1:
        raise ValueError("a template marker in a map key would reorder the map")
    field = descriptor.fields_by_number[number]
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _Node(tag, _items(payload, field.message_type))
    if field.type == FieldDescriptor.TYPE_STRING:
        return _Text(tag, _pieces(payload.decode()), field.has_presence or field.is_repeated)
    raise ValueError(f"a template marker in {field.full_name}, neither a string nor a message")


def _pieces(text: str) -> tuple[bytes | int, ...]:
    """A marked string as constant pieces and slot indexes."""
    pieces: list[bytes | int] = []
    rest = text
    while _OPEN in rest:
        before, _, after = rest.partition(_OPEN)
        index, _, rest = after.partition(_CLOSE)
        if before:
            pieces.append(before.encode())
        pieces.append(int(index))
    if rest:
        pieces.append(rest.encode())
    return tuple(pieces)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _skip(data: bytes, position: int, wire_type: int) -> int:
    """Past a field that is not length-delimited (varint, 64-bit or 32-bit)."""
    if wire_type == 0:
        return _read_varint(data, position)[1]
    if wire_type == 1:
        return position + 8
    if wire_type == 5:
        return position + 4
    raise ValueError(f"unexpected wire type {wire_type} in a template")
