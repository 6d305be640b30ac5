"""Protobuf messages as the JSON data Envoy's admin API prints, without a JSON text in between.

Envoy writes `/config_dump` with protobuf's C++ JSON printer and original field names
(`connect_timeout`, not `connectTimeout`). Reading that document with `json.loads` is cheap;
turning it into protobuf messages with `json_format` is not (about a second for a thousand
Istio clusters). So to compare a control plane's binary answer with Envoy's dump, the binary
side is turned into the same JSON data instead, here: a walk over the fields that are set, with
one converter per field kept in a cache, and the protobuf JSON mapping for the well-known types
(durations like `1.5s`, RFC 3339 timestamps, int64 as strings, bytes as base64, Any with its
`@type`, Struct as plain JSON).

The result is meant for equality checks and field paths. Where two encodings of the same value
could differ (float32 rounding, an Any of a type this process cannot resolve), the data differ
and the caller falls back to the exact, slower comparison; nothing is ever dropped, so equal data
always means equal messages. Parts of the result may be shared between equal payloads: treat it
as read-only.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

__all__ = ["Convert", "EnvoyJson", "Unconvertible"]

_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
_WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Convert = Callable[[Any], Any]


class EnvoyJson:
    """Converts messages whose `Any`s resolve in `pool` (see `configdump.binary_pool`).

    Converters are built once per message type and per field, on first use.
    """

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self.pool = pool
        self._converters: dict[Descriptor, Convert] = {}
        self._classes: dict[str, type | None] = {}

    def data(self, message: Any) -> Any:
        """The message as Envoy prints it, as JSON data (dicts, lists, str, numbers, bools)."""
        return self._converter(message.DESCRIPTOR)(message)

    def _converter(self, descriptor: Descriptor) -> Convert:
        converter = self._converters.get(descriptor)
        if converter is None:
            special = _SPECIAL.get(descriptor.full_name)
            converter = functools.partial(special, self) if special is not None else self._regular()
            self._converters[descriptor] = converter
        return converter

    def _regular(self) -> Convert:
        """The converter of one message type. Equal messages (the same bytes) are converted
        once: a thousand clusters share most of their settings."""
        fields: dict[FieldDescriptor, tuple[str, Convert]] = {}
        seen: dict[bytes, dict[str, Any]] = {}

        def convert(message: Any) -> dict[str, Any]:
            key = message.SerializeToString()
            out = seen.get(key)
            if out is not None:
                return out
            out = {}
            for field, value in message.ListFields():
                entry = fields.get(field)
                if entry is None:
                    entry = fields[field] = (field.name, self._field_converter(field))
                out[entry[0]] = entry[1](value)
            seen[key] = out
            return out

        return convert

    def _field_converter(self, field: FieldDescriptor) -> Convert:
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            value = self._value_converter(message_type.fields_by_name["value"])
            return lambda mapping: {_map_key(k): value(v) for k, v in mapping.items()}
        single = self._value_converter(field)
        if field.is_repeated:
            return lambda values: [single(item) for item in values]
        return single

    def _value_converter(self, field: FieldDescriptor) -> Convert:
        if field.message_type is not None:
            return self._converter(field.message_type)
        return _scalar_converter(field)

    def _any(self, message: Any) -> Any:
        type_url = message.type_url
        if not type_url and not message.value:
            return {}
        message_class = self._class(type_url.rsplit("/", 1)[-1])
        if message_class is None:
            raise Unconvertible(f"no message type for {type_url}")
        inner = message_class()
        inner.ParseFromString(message.value)
        data = self.data(inner)
        if inner.DESCRIPTOR.full_name in _SPECIAL:
            return {"@type": type_url, "value": data}
        return {"@type": type_url, **data}

    def _class(self, name: str) -> type | None:
        if name not in self._classes:
            try:
                descriptor: Descriptor = self.pool.FindMessageTypeByName(name)
            except KeyError:
                self._classes[name] = None
            else:
                self._classes[name] = message_factory.GetMessageClass(descriptor)
        return self._classes[name]


class Unconvertible(Exception):
    """A value that cannot be shown the way Envoy shows it (an Any of an unknown type)."""


def _scalar_converter(field: FieldDescriptor) -> Convert:
    kind = field.type
    if kind in _INT64:
        return str
    if kind == FieldDescriptor.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode()
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        names = {number: value.name for number, value in field.enum_type.values_by_number.items()}
        return lambda value: names.get(value, value)
    if kind in _FLOATS:
        return _float
    return _same


def _map_key(key: Any) -> str:
    return ("true" if key else "false") if isinstance(key, bool) else str(key)


def _same(value: Any) -> Any:
    return value


def _float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _fraction(nanos: int) -> str:
    """Protobuf's 0, 3, 6 or 9 fractional digits."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def _duration(converter: EnvoyJson, message: Any) -> str:
    seconds, nanos = message.seconds, message.nanos
    sign = "-" if seconds < 0 or nanos < 0 else ""
    return f"{sign}{abs(seconds)}{_fraction(abs(nanos))}s"


def _timestamp(converter: EnvoyJson, message: Any) -> str:
    moment = _EPOCH + timedelta(seconds=message.seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(message.nanos) + "Z"


def _wrapper(converter: EnvoyJson, message: Any) -> Any:
    field = message.DESCRIPTOR.fields_by_name["value"]
    return _scalar_converter(field)(message.value)


def _struct(converter: EnvoyJson, message: Any) -> Any:
    return {key: _value(converter, value) for key, value in message.fields.items()}


def _list_value(converter: EnvoyJson, message: Any) -> Any:
    return [_value(converter, value) for value in message.values]


def _value(converter: EnvoyJson, message: Any) -> Any:
    kind = message.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "number_value":
        return _float(message.number_value)
    if kind == "struct_value":
        return _struct(converter, message.struct_value)
    if kind == "list_value":
        return _list_value(converter, message.list_value)
    return getattr(message, kind)


def _field_mask(converter: EnvoyJson, message: Any) -> str:
    return ",".join(_camel(path) for path in message.paths)


def _camel(path: str) -> str:
    head, *rest = path.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_SPECIAL: dict[str, Callable[[EnvoyJson, Any], Any]] = {
    "google.protobuf.Any": EnvoyJson._any,
    "google.protobuf.Duration": _duration,
    "google.protobuf.Timestamp": _timestamp,
    "google.protobuf.Struct": _struct,
    "google.protobuf.ListValue": _list_value,
    "google.protobuf.Value": _value,
    "google.protobuf.FieldMask": _field_mask,
    "google.protobuf.Empty": lambda converter, message: {},
    **{name: _wrapper for name in _WRAPPERS},
}
