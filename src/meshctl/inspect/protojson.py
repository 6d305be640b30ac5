"""`-o json` and `-o yaml` as istioctl prints them.

istioctl prints lists of messages through `json.MarshalIndent` (4-space indent, with Go's HTML
escaping of `<`, `>`, `&`) and single messages through protojson's multiline form; YAML goes
through the one YAML writer (`meshctl.formats`). Python's `json_format` differs from
Go's protojson in ordering only, so the object it returns is reordered here: message fields in
declaration order, map and Struct keys sorted. Whole floats print as integers, as in Go.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from meshctl.formats import to_json, to_yaml

__all__ = ["message_json", "message_list_json", "message_list_text", "message_object", "message_text"]

# Types whose JSON form is not an object of their fields; inside an Any they sit under "value".
_SPECIAL_JSON = frozenset(
    {
        "google.protobuf.Duration",
        "google.protobuf.Timestamp",
        "google.protobuf.FieldMask",
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        *(
            f"google.protobuf.{name}Value"
            for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
        ),
    }
)
_FREE_FORM = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})
_INTEGER_KEYS = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def message_list_json(messages: Sequence[Message], pool: descriptor_pool.DescriptorPool | None = None) -> str:
    """A JSON array of messages, as `json.MarshalIndent(protio.MessageSlice, "", "    ")`."""
    text = to_json([message_object(message, pool) for message in messages])
    return "".join(_HTML_ESCAPES.get(char, char) for char in text)


def message_json(message: Message, pool: descriptor_pool.DescriptorPool | None = None) -> str:
    """One message, as protojson with a 4-space indent (no HTML escaping)."""
    return to_json(message_object(message, pool))


def message_text(message: Message, pool: descriptor_pool.DescriptorPool | None = None, *, as_yaml: bool) -> str:
    """One message as `-o json` (protojson, 4-space indent) or `-o yaml` prints it."""
    return to_yaml(message_object(message, pool)) if as_yaml else message_json(message, pool)


def message_list_text(
    messages: Sequence[Message], pool: descriptor_pool.DescriptorPool | None = None, *, as_yaml: bool
) -> str:
    """A list of messages as `-o json` (a `json.MarshalIndent` array) or `-o yaml` prints it."""
    if as_yaml:
        return to_yaml([message_object(message, pool) for message in messages])
    return message_list_json(messages, pool)


def message_object(message: Message, pool: descriptor_pool.DescriptorPool | None = None) -> Any:
    """The message as JSON-ready Python data, in Go's key order.

    `pool` resolves the Anys inside (a parsed dump's `ConfigDump.pool`); the default pool serves
    messages without Anys of unknown types.
    """
    pool = pool or descriptor_pool.Default()
    plain = json_format.MessageToDict(message, descriptor_pool=pool)
    return _ordered_message(plain, cast(Descriptor, message.DESCRIPTOR), pool)


def _ordered_message(
    value: dict[str, Any], descriptor: Descriptor, pool: descriptor_pool.DescriptorPool
) -> dict[str, Any]:
    return {
        field.json_name: _ordered_field(value[field.json_name], field, pool)
        for field in descriptor.fields
        if field.json_name in value
    }


def _ordered_field(value: Any, field: FieldDescriptor, pool: descriptor_pool.DescriptorPool) -> Any:
    message_type = field.message_type
    if message_type is None:
        return _whole_floats(value)
    if message_type.GetOptions().map_entry:
        key_type = message_type.fields_by_name["key"].type
        entry_field = message_type.fields_by_name["value"]
        keys = sorted(value, key=(lambda key: int(key)) if key_type in _INTEGER_KEYS else None)
        return {key: _ordered_field(value[key], entry_field, pool) for key in keys}
    if field.is_repeated:
        return [_ordered_value(item, message_type, pool) for item in value]
    return _ordered_value(value, message_type, pool)


def _ordered_value(value: Any, descriptor: Descriptor, pool: descriptor_pool.DescriptorPool) -> Any:
    name = descriptor.full_name
    if name in _FREE_FORM:
        return _sorted_free_form(value)
    if name == "google.protobuf.Any":
        return _ordered_any(value, pool)
    if name in _SPECIAL_JSON or not isinstance(value, dict):
        return _whole_floats(value)
    return _ordered_message(value, descriptor, pool)


def _ordered_any(value: dict[str, Any], pool: descriptor_pool.DescriptorPool) -> dict[str, Any]:
    type_url = value.get("@type")
    if not type_url:
        return value
    try:
        descriptor = pool.FindMessageTypeByName(type_url.rsplit("/", 1)[-1])
    except KeyError:
        return value
    if descriptor.full_name in _SPECIAL_JSON:
        ordered = {"@type": type_url}
        if "value" in value:
            ordered["value"] = _ordered_value(value["value"], descriptor, pool)
        return ordered
    return {"@type": type_url, **_ordered_message(value, descriptor, pool)}


def _sorted_free_form(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_free_form(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_free_form(item) for item in value]
    return _whole_floats(value)


def _whole_floats(value: Any) -> Any:
    if isinstance(value, list):
        return [_whole_floats(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value
