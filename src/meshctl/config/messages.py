"""Typed, immutable views of validated specs, each declared once together with its schema.

Generators used to read specs as dicts (`(spec.get("trafficPolicy") or {}).get("tls")`), where a
mistyped key reads as "absent" and fails silently. Every message meshctl reads is instead a frozen
dataclass decorated with `@message`, and that class is the one declaration of the message's
fields. From it the decorator derives:

- the validation schema, `cls.SCHEMA` (an `Obj`): one field per attribute, named on the wire in
  camelCase from the Python name (`per_try_timeout` is `perTryTimeout`) unless `field(json=...)`
  says otherwise, typed from the annotation (`str`, `int`, `float`, `bool`, a message class,
  `tuple[X, ...]`, `Mapping[str, X]`, `Any`) unless `field(schema)` gives a more precise type
  (ranges, patterns, rules); wire fields listed in `@message(free=...)` are accepted as any value
  and left out of the view (parts of Kubernetes objects meshctl never reads);
- a builder, `cls.of(data)`, that turns a dict the schema accepted into an instance, converting
  each value as its annotation says: nested messages, lists to tuples, and values annotated
  `Annotated[T, Parse(fn)]` through `fn` (durations become nanoseconds once, here, instead of in
  every generator).

So a field exists in validation exactly when it exists in the view, the two can never disagree
about its name, and mypy checks every read.

Presence follows protobuf: a field annotated `X | None` is None when absent (sub-messages, and
scalars whose presence matters, such as Istio's wrapper types); repeated fields are `()` and
maps empty when absent (a map is a `FrozenMap`, so a view holding one hashes, as generators'
shape keys need: generate.routeshapes); plain `str`, `int`, `float` and `bool` fields read as
their zero value.
Declarations spell a default for every field (`= None`, `= ()`, `= ""`, or `= field(...)`, whose
default comes from the annotation) so that type checkers, too, see every field as optional.
A sub-message named in `required` may be annotated without `| None` and given no default: the
schema guarantees it, so readers need no None check, and constructing the view needs it.
A union of several types (Kubernetes' int-or-string, `int | str | None`) keeps the validated
value as it is and needs an explicit schema.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from meshctl.config.schema import Bool, Float, Free, Int, List, Map, Obj, Rule, Str, Type

__all__ = ["FrozenMap", "Message", "Parse", "field", "is_message", "json_name", "message"]

M = TypeVar("M", bound="Message")

_SCHEMA = "meshctl.schema"
_JSON = "meshctl.json"


@dataclass(frozen=True, slots=True)
class Parse:
    """`Annotated` metadata: how a validated value becomes the view's value (`"1s"` → 10**9)."""

    convert: Callable[[Any], Any]


class FrozenMap(dict[Any, Any]):
    """A view's map: a dict (equal to one, read as one) that hashes by its items, so that the
    frozen views holding maps (a match's headers, a header operation's values) hash like the
    others. Views are never modified; nothing here stops it, as nothing stops it for their
    tuples' items either."""

    __slots__ = ("_hash",)

    def __hash__(self) -> int:  # type: ignore[override]
        try:
            return self._hash
        except AttributeError:
            self._hash: int = hash(frozenset(self.items()))
            return self._hash


def field(schema: Type | None = None, *, json: str | None = None, default: Any = dataclasses.MISSING) -> Any:
    """A message field with a more precise schema than its annotation gives, or another wire name.

    The default, when not given, comes from the annotation (see the module docstring).
    """
    return dataclasses.field(default=default, metadata={_SCHEMA: schema, _JSON: json})


def json_name(python_name: str) -> str:
    """`per_try_timeout` → `perTryTimeout`; a trailing `_` (`from_`, a Python keyword) is dropped."""
    head, *rest = python_name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def is_message(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, Message)


class Message:
    """The base of every view: `SCHEMA` validates the wire form, `of` builds the view from it."""

    __slots__ = ()
    SCHEMA: ClassVar[Obj]
    _PLAN: ClassVar[tuple[tuple[str, str, Callable[[Any], Any] | None], ...]]

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Self:
        """The view of `data`, a dict that `SCHEMA` accepted (absent and null fields alike)."""
        values: dict[str, Any] = {}
        for python, wire, convert in cls._PLAN:
            value = data.get(wire)
            if value is not None:
                values[python] = value if convert is None else convert(value)
        return cls(**values)


# `field` is deliberately not a field specifier here: to type checkers, `x: T = field(...)` is then
# a field with a default, which it is (the decorator supplies it), so views can be built with
# any subset of their fields, as protobuf messages can.
@typing.dataclass_transform(kw_only_default=True, frozen_default=True)
def message(
    cls: type[M] | None = None,
    *,
    required: Iterable[str] = (),
    oneof: Iterable[tuple[str, ...]] = (),
    exactly_one: Iterable[tuple[str, ...]] = (),
    rules: Iterable[Rule] = (),
    open: bool = False,
    free: Iterable[str] = (),
) -> Any:
    """Make a `Message` subclass a frozen, slotted, keyword-only dataclass with its `SCHEMA`.

    `required`, `oneof` and `exactly_one` name fields by their wire (JSON) names, as error
    messages do; `rules` are the semantic checks of `Obj`, run on the validated dict. A name
    that is not a field of the message is a programming error, raised at import. `free` names
    wire fields the schema accepts as any value without giving them a place in the view.
    """

    def wrap(target: type[M]) -> type[M]:
        return _build(target, tuple(required), tuple(oneof), tuple(exactly_one), tuple(rules), open, tuple(free))

    return wrap if cls is None else wrap(cls)


def _build(cls: type[M], required: tuple[str, ...], oneof: tuple[tuple[str, ...], ...],
           exactly_one: tuple[tuple[str, ...], ...], rules: tuple[Rule, ...], open_: bool,
           free: tuple[str, ...]) -> type[M]:
    if not issubclass(cls, Message):
        raise TypeError(f"{cls.__name__}: a @message class derives from Message")
    hints = typing.get_type_hints(cls, include_extras=True)
    own = [name for name in cls.__dict__.get("__annotations__", {}) if not name.isupper()]
    schema_fields: dict[str, Type] = {}
    plan: list[tuple[str, str, Callable[[Any], Any] | None]] = []
    for name in own:
        where = f"{cls.__name__}.{name}"
        declared = cls.__dict__.get(name, dataclasses.MISSING)
        spec = declared if isinstance(declared, dataclasses.Field) else None
        explicit_schema = spec.metadata.get(_SCHEMA) if spec is not None else None
        wire = (spec.metadata.get(_JSON) if spec is not None else None) or json_name(name)
        annotation = hints[name]
        schema_fields[wire] = explicit_schema or _schema_for(annotation, where)
        plan.append((name, wire, _converter(annotation)))
        if wire in required and _is_plain_message(annotation):
            continue
        if spec is None:
            setattr(cls, name, declared if declared is not dataclasses.MISSING else _default(annotation, where))
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            setattr(cls, name, _default(annotation, where, spec.metadata))
    for wire in free:
        if wire in schema_fields:
            raise TypeError(f"{cls.__name__}: {wire} is both a field and free")
        schema_fields[wire] = Free()
    for group in (required, *oneof, *exactly_one):
        unknown = [name for name in group if name not in schema_fields]
        if unknown:
            raise TypeError(f"{cls.__name__}: {', '.join(unknown)} named in @message but not a field")
    made = dataclass(frozen=True, slots=True, kw_only=True)(cls)
    made.SCHEMA = Obj(schema_fields, required=required, oneof=oneof, exactly_one=exactly_one, rules=rules,
                      open=open_)
    made._PLAN = tuple(plan)
    return made


def _is_plain_message(annotation: Any) -> bool:
    """A message field that is not optional: allowed without a default when it is required."""
    base, _, optional = _unwrap(annotation)
    return is_message(base) and not optional


def _unwrap(annotation: Any) -> tuple[Any, tuple[Any, ...], bool]:
    """(the type, its Annotated metadata, whether None is allowed)."""
    metadata: tuple[Any, ...] = ()
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata = tuple(extra)
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) > 1:
            return functools.reduce(operator.or_, args), metadata, optional
        (annotation,) = args
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            metadata = tuple(extra)
    return annotation, metadata, optional


_SCALARS: dict[Any, Callable[[], Type]] = {str: Str, int: Int, float: Float, bool: Bool, Any: Free}


def _schema_for(annotation: Any, where: str) -> Type:
    base, metadata, _ = _unwrap(annotation)
    if metadata:
        raise TypeError(f"{where}: a parsed field needs an explicit schema, field(SCHEMA)")
    if base in _SCALARS:
        return _SCALARS[base]()
    if is_message(base):
        return base.SCHEMA
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return List(_schema_for(args[0], where))
    if origin in (Mapping, dict, typing.Mapping) and args[0] is str:
        return Map(_schema_for(args[1], where))
    raise TypeError(f"{where}: cannot infer a schema from {annotation!r}; give field(SCHEMA)")


def _converter(annotation: Any) -> Callable[[Any], Any] | None:
    """How to turn a validated value into the annotated type; None when it already is one."""
    base, metadata, _ = _unwrap(annotation)
    for item in metadata:
        if isinstance(item, Parse):
            return item.convert
    if is_message(base):
        build: Callable[[Any], Any] = base.of
        return build
    if base is int:
        return _int
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin is tuple:
        item_of = _converter(args[0])
        if item_of is None:
            return tuple
        return lambda items: tuple(item_of(item) for item in items)
    if origin in (Mapping, dict, typing.Mapping):
        key_of = _int if args[0] is int else None
        value_of = _converter(args[1])
        return lambda items: FrozenMap(
            ((key_of(key) if key_of else key), (value_of(value) if value_of else value)) for key, value in items.items()
        )
    return None


def _int(value: Any) -> int:
    """Integers arrive as numbers, as `3.0`, or (Kubernetes int-or-string) as digit strings."""
    return int(value)


def _default(annotation: Any, where: str, metadata: Mapping[str, Any] | None = None) -> Any:
    """The field's value when absent: None, (), an empty map, or the scalar's zero value."""
    base, _, optional = _unwrap(annotation)
    if optional or base is Any:
        value: Any = None
    elif typing.get_origin(base) is tuple:
        value = ()
    elif typing.get_origin(base) in (Mapping, typing.Mapping):
        return dataclasses.field(default_factory=FrozenMap, metadata=metadata or {})
    elif base in (str, int, float, bool):
        value = base()
    else:
        raise TypeError(f"{where}: give a default or make the field optional")
    return dataclasses.field(default=value, metadata=metadata or {}) if metadata else value
