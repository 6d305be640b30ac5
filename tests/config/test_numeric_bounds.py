"""Every number a resource can carry is bounded by what the Envoy (or Kubernetes) field it becomes
can hold: a value either validates and then translates and prints as JSON, or it is refused as
bad input naming its file, line and field. Nothing in between: no traceback in the loader, no
crash in translation, no JSON output that fails.

The walk is exhaustive: it finds every integer, number and duration field in every kind's schema
and sets it, in a resource that applies to the fixed test mesh (so translation really uses it),
to the extremes of its range and beyond.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from mesh_variants import VARIANTS as MESH_VARIANTS
from mesh_variants import document
from testsupport import BASE

from meshctl.config.kinds import KINDS, KindInfo
from meshctl.config.kinds.common import Duration
from meshctl.config.loader import load_file
from meshctl.config.paths import FieldPath, format_path
from meshctl.config.schema import INT64_MAX, Float, Int, List, Map, Obj, Type
from meshctl.config.values import parse_duration
from meshctl.envoybin import validate_config
from meshctl.generate.bootstrap import static_bootstrap
from meshctl.generate.proxy import generate
from meshctl.model.snapshot import build_snapshot

LOCATED = re.compile(r"^[^:]+:\d+: ")
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_PRINTED: set[bytes] = set()  # resources already printed as JSON: most are the same in every case
Numeric = Int | Float | Duration


# The variants, and one holding a field meshctl refuses whatever its value (that variant may
# only be refused for that field).
VARIANTS = {**MESH_VARIANTS, "VirtualService": [
    *MESH_VARIANTS["VirtualService"],
    {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}],
                                     "fault": {"delay": {"exponentialDelay": "1s"}}}]},
]}
UNSUPPORTED = {"spec.http[0].fault.delay.exponentialDelay"}


def numeric_fields(schema: Type, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Numeric]]:
    """Every integer, number and duration field under `schema`; `*` stands for any map key."""
    if isinstance(schema, Obj):
        for name, field_type in schema.fields.items():
            yield from numeric_fields(field_type, (*path, name))
    elif isinstance(schema, List):
        yield from numeric_fields(schema.item, (*path, 0))
    elif isinstance(schema, Map):
        yield from numeric_fields(schema.value, (*path, "*"))
    elif isinstance(schema, (Int, Float, Duration)):
        yield path, schema


def extremes(field_type: Numeric) -> list[Any]:
    """The edges of the field's own range and values past every range a field can have."""
    if isinstance(field_type, Duration):
        longest = parse_duration(field_type.maximum) or 0
        return [field_type.maximum, f"{longest + 1}ns", "99999999999h", "99999999999999999999999h",
                "315576000000s", "315576000001s", "9" * 1000 + "s"]
    if isinstance(field_type, Float):
        return [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 10**400, 2**64]
    values = [field_type.high, field_type.high + 1, field_type.low - 1, 2**32, 2**63, 2**64,
              -(2**63) - 1, 10**40, 1e300]
    return list(dict.fromkeys(values))


def _cases() -> Iterator[tuple[KindInfo, FieldPath, Numeric]]:
    for info in KINDS.values():
        for path, field_type in numeric_fields(info.schema):
            yield info, path, field_type


CASES = list(_cases())


def _holders(info: KindInfo, path: FieldPath) -> list[dict[str, Any]]:
    """The variants holding `path`; a variant with an unsupported field only for that field."""
    field = format_path(((info.body,) if info.body else ()) + path)
    return [variant for variant in VARIANTS.get(info.resource_kind, [])
            if _targets(variant, path) and (field in UNSUPPORTED or not _unsupported(info, variant))]


def _unsupported(info: KindInfo, variant: dict[str, Any]) -> bool:
    return any(_targets(variant, path) for path, _ in numeric_fields(info.schema)
               if format_path(((info.body,) if info.body else ()) + path) in UNSUPPORTED)


def _targets(value: Any, path: FieldPath) -> list[tuple[Any, Any]]:
    """(container, key) of every place `path` names in `value`: a schema path names list items
    as 0 and map entries as `*`, and either matches every item or entry."""
    if not path:
        return []
    head, rest = path[0], path[1:]
    keys: list[Any]
    if isinstance(value, dict):
        keys = list(value) if head == "*" else [head] if head in value else []
    elif isinstance(value, list):
        keys = list(range(len(value)))
    else:
        return []
    if not rest:
        return [(value, key) for key in keys]
    return [found for key in keys for found in _targets(value[key], rest)]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    path = tmp_path_factory.mktemp("mesh") / "base.yaml"
    path.write_text(BASE)
    return load_file(str(path)).resources


@pytest.fixture(scope="module")
def proxies(base: list[Any]) -> list[str]:
    """The proxies translated for: one workload of each of BASE's apps (a Deployment scaled to
    10,000 replicas adds 10,000 more, which would only repeat the same work)."""
    by_app = {workload.labels.get("app"): workload.proxy_id for workload in build_snapshot(base).registry.workloads}
    return sorted(by_app.values())


def test_every_numeric_field_of_every_kind_is_in_a_valid_variant(tmp_path: Path) -> None:
    """The walk below is only as complete as VARIANTS: each field must appear in a resource that
    validates as written (so an extreme value is the only thing wrong with it)."""
    missing = [f"{info.resource_kind} {format_path(path)}" for info, path, _ in CASES if not _holders(info, path)]
    assert not missing, "add these fields to VARIANTS:\n" + "\n".join(missing)
    for kind, variants in VARIANTS.items():
        info = next(info for info in KINDS.values() if info.resource_kind == kind)
        for index, body in enumerate(variants):
            path = tmp_path / f"{kind}-{index}.yaml"
            path.write_text(yaml.safe_dump(document(info, body)))
            problems = load_file(str(path)).problems
            assert all(_indexless(p.field) in UNSUPPORTED for p in problems), [str(p) for p in problems]


@pytest.mark.parametrize(("info", "path", "field_type"), CASES, ids=[f"{i.resource_kind}.{format_path(p)}" for i, p, _ in CASES])
def test_extreme_values_are_refused_or_translate_to_json(tmp_path: Path, base: list[Any], proxies: list[str],
                                                         info: KindInfo, path: FieldPath, field_type: Numeric) -> None:
    prefix: FieldPath = (info.body,) if info.body else ()
    where = format_path((*prefix, *(path[:path.index("*")] if "*" in path else path)))
    for variant in _holders(info, path)[:1]:
        for value in extremes(field_type):
            body = copy.deepcopy(variant)
            for container, key in _targets(body, path):
                container[key] = value
            file = tmp_path / "extreme.yaml"
            file.write_text(yaml.dump(document(info, body), Dumper=_DUMPER, width=2**20))
            result = load_file(str(file))
            if result.problems:
                messages = [str(problem) for problem in result.problems]
                assert all(LOCATED.match(m) for m in messages), messages
                assert any(_indexless(p.field).startswith(where) for p in result.problems), (value, messages)
                continue
            _translate_to_json(base, proxies, result.resources)


def _indexless(field: str) -> str:
    return re.sub(r"\[\d+\]", "[0]", field)


def _translate_to_json(base: list[Any], proxies: list[str], loaded: list[Any]) -> None:
    keys = {resource.key for resource in loaded}
    snapshot = build_snapshot(loaded + [r for r in base if r.key not in keys])
    for proxy in proxies:
        config = generate(snapshot, snapshot.proxy(proxy))
        for message in (*config.clusters, *config.listeners, *config.routes, *config.endpoints):
            wire = message.SerializeToString(deterministic=True)
            if wire not in _PRINTED:
                json_format.MessageToJson(message)
                _PRINTED.add(wire)


def largest(field_type: Numeric) -> list[Any]:
    """Candidates for the largest value a field takes, largest first (rules may refuse some)."""
    if isinstance(field_type, Duration):
        longest = parse_duration(field_type.maximum) or 0
        return [f"{longest}ns", f"{longest - longest % 1_000_000}ns", f"{longest - longest % 1_000_000_000}ns"]
    if isinstance(field_type, Float):
        return [value for value in (field_type.high, 100.0, 1.7976931348623157e308) if value is not None]
    return [field_type.high, 2**31 - 1, 65535, 100]


def test_envoy_accepts_every_field_at_the_largest_value_meshctl_accepts(tmp_path: Path, base: list[Any],
                                                                        proxies: list[str]) -> None:
    """Accepting a value is a promise that Envoy takes what it becomes: every variant, with each
    field raised to the largest value validation lets through, runs through `envoy --mode validate`."""
    bootstraps: dict[bytes, tuple[str, Any]] = {}
    for kind, variants in VARIANTS.items():
        info = next(info for info in KINDS.values() if info.resource_kind == kind)
        # A Deployment's replicas are a number of workloads, not a value Envoy holds: 10,000 of
        # them would only make every bootstrap 10,000 endpoints long.
        fields = [(path, field_type) for path, field_type in numeric_fields(info.schema) if path != ("replicas",)]
        for index, variant in enumerate(variants):
            if _unsupported(info, variant):
                continue
            body = copy.deepcopy(variant)
            for path, field_type in fields:
                for value in largest(field_type):
                    trial = copy.deepcopy(body)
                    for container, key in _targets(trial, path):
                        container[key] = value
                    if _targets(trial, path) and _valid(info, trial):
                        body = trial
                        break
            loaded = _load(tmp_path, info, body)
            assert not loaded.problems, [str(p) for p in loaded.problems]
            keys = {resource.key for resource in loaded.resources}
            snapshot = build_snapshot(loaded.resources + [r for r in base if r.key not in keys])
            for proxy_id in proxies:
                proxy = snapshot.proxy(proxy_id)
                bootstrap = static_bootstrap(proxy, generate(snapshot, proxy))
                wire = bootstrap.SerializeToString(deterministic=True)
                what = f"{kind} variant {index} for {proxy_id}:\n{yaml.safe_dump(body)}"
                bootstraps.setdefault(wire, (what, bootstrap))

    def verdict(number: int, bootstrap: Any) -> Any:
        path = tmp_path / f"bootstrap-{number}.json"
        path.write_text(json_format.MessageToJson(bootstrap))
        return validate_config(str(path))

    with ThreadPoolExecutor(2) as pool:
        verdicts = pool.map(verdict, range(len(bootstraps)), [b for _, b in bootstraps.values()])
        for (what, _), result in zip(bootstraps.values(), verdicts, strict=True):
            assert result.ok, f"{what}\n{result.output}"


def _valid(info: KindInfo, body: dict[str, Any]) -> bool:
    """The schema's verdict alone (what the loader checks after parsing), without a file."""
    problems: list[str] = []
    info.schema.check(body, (), lambda path, message: problems.append(message))
    return not problems


def _load(tmp_path: Path, info: KindInfo, body: dict[str, Any]) -> Any:
    file = tmp_path / "largest.yaml"
    file.write_text(yaml.dump(document(info, body), Dumper=_DUMPER, width=2**20))
    return load_file(str(file))


def test_the_issue_examples_are_refused_at_their_field(assert_rejected: Any) -> None:
    longest = "the longest is 2562047h47m15.999999999s"
    assert_rejected("VirtualService", """
        hosts: [reviews]
        http:
        - route: [{destination: {host: reviews}}]
          timeout: 99999999999h  # <-
        """, "spec.http[0].timeout", f"duration '99999999999h' is out of range: {longest}")
    assert_rejected("VirtualService", """
        hosts: [reviews]
        http:
        - route: [{destination: {host: reviews}}]
          retries:
            attempts: 2
            perTryTimeout: 99999999999999999999999h  # <-
        """, "spec.http[0].retries.perTryTimeout", f"duration '99999999999999999999999h' is out of range: {longest}")
    assert_rejected("VirtualService", """
        hosts: [reviews]
        http:
        - route: [{destination: {host: reviews}}]
          fault:
            delay:
              fixedDelay: 99999999999999999999999h  # <-
        """, "spec.http[0].fault.delay.fixedDelay", f"duration '99999999999999999999999h' is out of range: {longest}")
    assert_rejected("DestinationRule", """
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash:
              useSourceIp: true
              minimumRingSize: 18446744073709551616  # <-
        """, "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        "must be <= 8388608, got 18446744073709551616")
    assert_rejected("DestinationRule", """
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash:
              httpCookie:
                name: user
                ttl: 99999999999999999999999h  # <-
        """, "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl",
        f"duration '99999999999999999999999h' is out of range: {longest}")
    assert_rejected("DestinationRule", """
        host: reviews
        subsets:
        - name: v1
          trafficPolicy:
            connectionPool:
              tcp:
                idleTimeout: 99999999999999999999999h  # <-
        """, "spec.subsets[0].trafficPolicy.connectionPool.tcp.idleTimeout",
        f"duration '99999999999999999999999h' is out of range: {longest}")
    assert_rejected("DestinationRule", """
        host: reviews
        trafficPolicy:
          connectionPool:
            tcp:
              tcpKeepalive:
                time: 4294967296s  # <-
        """, "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time",
        "duration '4294967296s' is out of range: the longest is 4294967295s")


def test_integers_are_int64_unless_said_otherwise() -> None:
    assert Int().high == INT64_MAX
    problems: list[str] = []
    Int().check(2**63, ("x",), lambda path, message: problems.append(message))
    assert problems == [f"must be <= {INT64_MAX}, got 9223372036854775808"]
