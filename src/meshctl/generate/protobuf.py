"""Protobuf's well-known types as translation fills them: `Any`, `Duration`, `Struct`.

Every generator packs typed configs and writes durations from the views' nanoseconds; doing
it one way keeps the bytes (and so the resource versions) stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import any_pb2, duration_pb2, struct_pb2
from google.protobuf.message import Message
from udpa.type.v1 import typed_struct_pb2

from meshctl.config.values import split_nanos
from meshctl.resources import type_url_of

__all__ = ["MAX_UINT32", "duration", "set_duration", "struct_value", "typed", "typed_struct"]

MAX_UINT32 = 4294967295


def typed(message: Message) -> any_pb2.Any:
    """Pack a typed_config deterministically (stable bytes give stable resource versions)."""
    return any_pb2.Any(type_url=type_url_of(message), value=message.SerializeToString(deterministic=True))


def typed_struct(type_url: str, fields: Mapping[str, Any]) -> any_pb2.Any:
    """An Istio-private extension config, carried as a TypedStruct (istio-proxy only)."""
    holder = typed_struct_pb2.TypedStruct(type_url=type_url)
    holder.value.update(dict(fields))
    return typed(holder)


def duration(seconds: float = 0, nanos: int | None = None) -> duration_pb2.Duration:
    if nanos is None:
        whole = int(seconds)
        return duration_pb2.Duration(seconds=whole, nanos=int(round((seconds - whole) * 1e9)))
    sec, rest = split_nanos(nanos)
    return duration_pb2.Duration(seconds=sec, nanos=rest)


def set_duration(target: duration_pb2.Duration, nanos: int) -> None:
    """Set a protobuf Duration from a view's nanoseconds (views parse durations once); zero
    too is set (present), as an explicit `0s` means something (an idle timeout disabled)."""
    target.SetInParent()
    target.seconds, target.nanos = split_nanos(nanos)


def struct_value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, (int, float)):
        out.number_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            out.struct_value.fields[key].CopyFrom(struct_value(item))
    elif isinstance(value, Iterable):
        for item in value:
            out.list_value.values.append(struct_value(item))
    else:
        out.null_value = struct_pb2.NULL_VALUE
    return out
