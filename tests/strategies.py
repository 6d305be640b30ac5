"""Hypothesis strategies of hostile input files, reusable by any test that reads config.

`malformed_documents()` draws the bytes of one input file: random YAML/JSON structures, objects of
random kinds and apiVersions, valid Istio examples with mutations (wrong types, unknown fields,
removed fields, random unicode, deep nesting, numbers and durations at and past every range,
parts repeated through YAML aliases), broken YAML (alias bombs, tags) and binary junk.
`mutated_objects()` draws the decoded side (a Python dict) for code that takes objects rather
than files.

Every generator is written once against a small `Source` of choices. Hypothesis can drive it
choice by choice (`malformed_documents`, shrinkable to a minimal failing file), or seed a
`random.Random` with one draw (`fast_malformed_documents`, the same files at a tenth of the cost,
for volume: failures still replay from the seed, they just do not shrink).

`FUZZ` is the settings every property test starts from. It is derandomized: CI must give the
same verdict for the same commit, so a landing is never blocked by whatever a fresh seed happens
to find that day. `MESHCTL_FUZZ=explore` draws fresh random examples, `examples(n)` ten times as
many, to hunt for new bugs; each one found becomes a plain regression test.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import mesh_variants
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

T = TypeVar("T")
EXPLORE = os.environ.get("MESHCTL_FUZZ") == "explore"
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                database=None, derandomize=not EXPLORE)
VALID_DIR = Path(__file__).parent / "config" / "valid"

API_VERSIONS = [
    "networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3",
    "security.istio.io/v1", "security.istio.io/v1beta1", "v1", "apps/v1", "discovery.k8s.io/v1",
    "networking.istio.io/v2", "security.istio.io/v1alpha1", "", "/", "a/b/c",
]
KINDS = [
    "VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry",
    "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication", "Service", "Endpoints",
    "EndpointSlice", "Pod", "Deployment", "Namespace", "ServiceAccount", "List", "ConfigMap", "",
]
SPECIAL_TEXTS = ["", "*", "~", ".", "a/b", "unix://", "10.0.0.1/33", "1s", "-1ms", "%", "mesh", "ns/",
                 "\u0000", "\ufeff", "a" * 300]
# Numbers and durations at and beyond the ranges of the fields they land in: Envoy's uint32 and
# int32, int64, protobuf's Duration (315,576,000,000 s), Envoy's and Go's durations (~292 years).
EXTREME_NUMBERS = [0, -1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40,
                   8_388_609, 5_000_011, 1e300, -1e300, 1.7976931348623157e308, 5e-324, 100.0000001]
EXTREME_DURATIONS = ["2562047h47m15.999999999s", "2562047h47m16s", "2562047h47m16.854775808s", "9223372036s",
                     "315576000000s", "315576000001s", "99999999999h", "99999999999999999999999h",
                     "9" * 1000 + "s", "0.0000000001s", "4294967296s", "1ns", "0s", "-0s",
                     "1h" * 101]
BROKEN_YAML = [
    "a: [1, 2\n", "{{{{", "key: *undefined\n", "a: &x [*x]\n", "- a\nb: c\n", "a: b: c\n",
    "\t- tab\n", "a: 1\na: 2\n", "<<: {a: 1}\n", "!!python/object:os.system {}\n", "? [a]\n: b\n",
    "a: !!binary AAAA\n", "a: !custom x\n", "%YAML 9.9\n---\na: 1\n", "'unterminated\n",
    "[" * 200, "a: 0x1G\n", "a: 1e99999\n", "--- |\n  text\n", "a: .inf\n", "\ufeffkind: Pod\n",
    "a: &a [*a, *a]\n", "kind: List\napiVersion: v1\nitems: [1, {kind: Pod}]\n",
    "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
    "spec: !!python/object/apply:os.system [echo]\n", "spec: !!set {a, b}\n", "spec: !Ref [x]\n",
    "spec: !!omap [a: 1]\n", "? !!python/name:os.system x\n: y\n", "a: " + "9" * 5000 + "\n",
    "# padding\n" * 500 + "kind: Pod\x00\n", "a: 0b" + "1" * 300 + "\n",
]
BYTE_PREFIXES = [b"", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"kind: Pod\n", b"\x00"]
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class Source(Protocol):
    """The choices a generator makes; Hypothesis or a seeded `random.Random` answers them."""

    def choice(self, options: Sequence[T]) -> T: ...

    def integer(self, low: int, high: int) -> int: ...

    def text(self) -> str: ...

    def value(self) -> Any: ...

    def binary(self, size: int) -> bytes: ...


def _examples() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(VALID_DIR.glob("*.yaml")):
        documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict))
    return documents


EXAMPLES = _examples() + mesh_variants.documents()

_texts = st.text(max_size=30) | st.sampled_from(SPECIAL_TEXTS)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(EXTREME_NUMBERS + EXTREME_DURATIONS)
    | _texts
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_texts, children, max_size=3),
    max_leaves=12,
)


class DrawSource:
    """Choices drawn one by one from Hypothesis, so failures shrink."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def choice(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(min_value=low, max_value=high))

    def text(self) -> str:
        return self.draw(_texts)

    def value(self) -> Any:
        return self.draw(_values)

    def binary(self, size: int) -> bytes:
        return self.draw(st.binary(max_size=size))


class RandomSource:
    """Choices from a seeded `random.Random`: cheap, reproducible from the seed, not shrinkable."""

    _ALPHABET = "abcXYZ019-_./:*~%@[]{}\"' \t\n\u00e9\u4e2d\U0001f600\u202e\u0085"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def choice(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def text(self) -> str:
        if self.rng.random() < 0.3:
            return self.rng.choice(SPECIAL_TEXTS)
        return "".join(self.rng.choice(self._ALPHABET) for _ in range(self.rng.randint(0, 20)))

    def _scalar(self) -> Any:
        pick = self.rng.randint(0, 6)
        if pick == 0:
            return None
        if pick == 1:
            return self.rng.random() < 0.5
        if pick == 2:
            return self.rng.choice([0, -1, 1, 65535, 65536, 2**31, 2**64, -(2**70), self.rng.randint(-999, 99999)])
        if pick == 3:
            return self.rng.choice([0.5, -0.0, 1e308, float("inf"), float("nan"), 100.0001, 1e-9])
        if pick == 4:
            return self.rng.choice(EXTREME_NUMBERS + EXTREME_DURATIONS)
        return self.text()

    def value(self, depth: int = 3) -> Any:
        pick = self.rng.random()
        if depth == 0 or pick < 0.6:
            return self._scalar()
        if pick < 0.8:
            return [self.value(depth - 1) for _ in range(self.rng.randint(0, 3))]
        return {self.text(): self.value(depth - 1) for _ in range(self.rng.randint(0, 3))}

    def binary(self, size: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, size))


# --- generators written against a Source ----------------------------------------------------------


def random_object(source: Source) -> dict[str, Any]:
    """An object with a random (often real) kind and apiVersion and random content."""
    obj: dict[str, Any] = {
        "apiVersion": source.choice(API_VERSIONS) if source.integer(0, 3) else source.text(),
        "kind": source.choice(KINDS) if source.integer(0, 3) else source.text(),
    }
    if source.integer(0, 1):
        obj["metadata"] = {"name": source.choice([source.text(), "ok-name"]), "namespace": source.value()}
    if source.integer(0, 1):
        obj["spec"] = source.value()
    if source.integer(0, 3) == 0:
        obj[source.text()] = source.value()
    return obj


def deeply_nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"x": value}
    return value


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a decoded document, for mutations to pick from."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _delete(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if rest:
        return _replace(value, (head,), _delete(value[head], rest))
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if key != head}
    return [item for index, item in enumerate(value) if index != head]


def _retyped(value: Any) -> Any:
    """The same content in the wrong container: maps become strings, lists maps, scalars lists."""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    return [value]


def _extreme(source: Source, value: Any) -> Any:
    """An extreme of the same sort: a duration for a duration, a number for a number."""
    if isinstance(value, str) and value[:1].isdigit():
        return source.choice(EXTREME_DURATIONS)
    return source.choice(EXTREME_NUMBERS)


def _aliased(document: Any, path: tuple[Any, ...]) -> Any:
    """The list at `path` with its first item repeated by reference: dumped as YAML, the repeat
    becomes an anchor and an alias."""
    items = _get(document, path)
    return _replace(document, path, [*items, *([items[0]] * 3)])


def _numeric_paths(document: Any) -> list[tuple[Any, ...]]:
    return [path for path in _paths(document) if path and _is_numeric(_get(document, path))]


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (isinstance(value, str) and value[:1].isdigit() and value[-1:] in "smh")


def _mutate(source: Source, document: Any) -> Any:
    mutation = source.choice(["replace", "unknown", "delete", "unicode", "nest", "retype", "extreme", "alias"])
    if mutation == "extreme":
        numeric = _numeric_paths(document)
        if numeric:
            path = source.choice(numeric)
            return _replace(document, path, _extreme(source, _get(document, path)))
    if mutation == "alias":
        lists = [path for path in _paths(document) if isinstance(_get(document, path), list) and _get(document, path)]
        if lists:
            return _aliased(document, source.choice(lists))
    path = source.choice(_paths(document))
    target = _get(document, path)
    if mutation == "unknown" and isinstance(target, dict):
        return _replace(document, path, {**target, source.text(): source.value()})
    if mutation == "delete" and path:
        return _delete(document, path)
    if mutation == "nest":
        return _replace(document, path, deeply_nested(source.integer(30, 90), target))
    if mutation == "retype":
        return _replace(document, path, _retyped(target))
    if mutation == "unicode":
        return _replace(document, path, source.text())
    return _replace(document, path, source.value())


def mutated_object(source: Source) -> dict[str, Any]:
    """A valid Istio example with one to three mutations applied."""
    document: Any = source.choice(EXAMPLES)
    for _ in range(source.integer(1, 3)):
        document = _mutate(source, document)
    return document if isinstance(document, dict) else {"value": document}


def _render(source: Source, objects: list[Any]) -> bytes:
    """Objects as a multi-document YAML file, or the first one as JSON."""
    if source.integer(0, 2) == 0:
        return json.dumps(objects[0], ensure_ascii=False).encode("utf-8", "surrogatepass")
    text = "---\n".join(yaml.dump(item, Dumper=_DUMPER, allow_unicode=True, sort_keys=False) for item in objects)
    return text.encode("utf-8", "surrogatepass")


def _spliced(source: Source) -> bytes:
    """A valid example's text with a random run of bytes cut out and junk pasted in."""
    text = yaml.dump(source.choice(EXAMPLES), Dumper=_DUMPER, sort_keys=False).encode()
    start = source.integer(0, len(text))
    end = source.integer(start, min(len(text), start + 40))
    return text[:start] + source.binary(10) + text[end:]


_MAKERS: list[Callable[[Source], bytes]] = [
    lambda source: _render(source, [mutated_object(source) for _ in range(source.integer(1, 2))]),
    lambda source: _render(source, [mutated_object(source)]),
    lambda source: _render(source, [random_object(source)]),
    lambda source: _render(source, [source.value()]),
    lambda source: _render(source, [deeply_nested(source.integer(50, 120), source.value())]),
    lambda source: source.choice(BROKEN_YAML).encode(),
    lambda source: source.choice(BYTE_PREFIXES) + source.binary(200),
    _spliced,
]


def malformed_document(source: Source) -> bytes:
    """The bytes of one hostile input file, made from `source`'s choices."""
    return source.choice(_MAKERS)(source)


# --- strategies ----------------------------------------------------------------------------------


@st.composite
def malformed_documents(draw: st.DrawFn) -> bytes:
    """Hostile input files, each choice drawn from Hypothesis (failures shrink)."""
    return malformed_document(DrawSource(draw))


def fast_malformed_documents() -> st.SearchStrategy[bytes]:
    """The same files from a seeded random generator: for volume, replayable but not shrinkable."""
    return st.randoms(use_true_random=True).map(lambda rng: malformed_document(RandomSource(rng)))


@st.composite
def mutated_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Valid Istio examples with mutations, as decoded objects."""
    return mutated_object(DrawSource(draw))


def examples(count: int) -> int:
    """`count` examples for CI, ten times as many when exploring."""
    return count * 10 if EXPLORE else count
