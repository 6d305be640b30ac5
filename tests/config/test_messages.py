"""Typed views: one declaration gives the schema (wire names, types) and the view built from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from meshctl.config.kinds import KINDS
from meshctl.config.kinds.common import STRICT_DURATION, Nanos
from meshctl.config.kinds.networking import DestinationRule
from meshctl.config.loader import load
from meshctl.config.messages import Message, field, json_name, message
from meshctl.config.schema import Free, Int, Map


@message
class Probe(Message):
    attempts: int | None = field(Int(0, 10))
    per_try_timeout: Nanos | None = field(STRICT_DURATION)


@message(required=["name"])
class Sample(Message):
    name: str
    probe: Probe | None = None
    probes: tuple[Probe, ...]
    hosts: tuple[str, ...]
    labels: Mapping[str, str]
    by_port: Mapping[int, Probe] = field(Map(Probe.SCHEMA), json="portLevel")
    from_: str = ""
    raw: Any


def problems(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    found: list[tuple[tuple[Any, ...], str]] = []
    Sample.SCHEMA.check(data, (), lambda path, text: found.append((path, text)))
    return found


@pytest.mark.parametrize(("python", "wire"), [
    ("per_try_timeout", "perTryTimeout"),
    ("consecutive_5xx_errors", "consecutive5xxErrors"),
    ("http1_max_pending_requests", "http1MaxPendingRequests"),
    ("from_", "from"),
    ("name", "name"),
])
def test_wire_names_are_camel_case_of_python_names(python: str, wire: str) -> None:
    assert json_name(python) == wire


def test_the_schema_has_exactly_the_declared_fields_under_their_wire_names() -> None:
    assert list(Sample.SCHEMA.fields) == ["name", "probe", "probes", "hosts", "labels", "portLevel", "from", "raw"]
    assert Sample.SCHEMA.required == ("name",)


def test_the_schema_checks_what_the_annotations_and_explicit_types_say() -> None:
    assert problems({"name": "x", "probe": {"attempts": 11, "perTryTimeout": "1us"}, "hosts": [1],
                     "labels": {"a": 2}, "portLevel": {"80": {"attempts": "x"}}, "prob": {}}) == [
        (("probe", "attempts"), "must be <= 10, got 11"),
        (("probe", "perTryTimeout"), "duration must be at least 1ms, got '1us'"),
        (("hosts", 0), "expected a string, got an integer"),
        (("labels", "a"), "expected a string, got an integer"),
        (("portLevel", "80", "attempts"), "expected an integer, got a string"),
        (("prob",), "unknown field 'prob' (did you mean 'probe'?)"),
    ]
    assert problems({}) == [(("name",), "required field is missing")]


def test_the_view_converts_values_as_annotated() -> None:
    view = Sample.of({"name": "x", "probe": {"perTryTimeout": "1.5s"}, "probes": [{"attempts": 3.0}],
                      "hosts": ["a", "b"], "labels": {"app": "r"}, "portLevel": {"8080": {"attempts": 1}},
                      "from": "y", "raw": {"any": ["thing"]}})
    assert view == Sample(name="x", probe=Probe(per_try_timeout=1_500_000_000), probes=(Probe(attempts=3),),
                          hosts=("a", "b"), labels={"app": "r"}, by_port={8080: Probe(attempts=1)}, from_="y",
                          raw={"any": ["thing"]})
    assert isinstance(view.probes[0].attempts, int)


def test_absent_fields_read_as_protobuf_defaults() -> None:
    view = Sample.of({})
    assert (view.name, view.probe, view.probes, view.hosts, dict(view.labels), view.from_, view.raw) == (
        "", None, (), (), {}, "", None)


def test_views_are_immutable() -> None:
    view = Sample.of({"name": "x"})
    with pytest.raises(FrozenInstanceError):
        view.name = "y"  # type: ignore[misc]


def test_a_misnamed_constraint_fails_at_import_not_silently() -> None:
    with pytest.raises(TypeError, match="hostz named in @message but not a field"):
        @message(required=["hostz"])
        class Broken(Message):
            host: str = ""


def test_a_field_whose_type_gives_no_schema_must_declare_one() -> None:
    with pytest.raises(TypeError, match="needs an explicit schema"):
        @message
        class Broken(Message):
            timeout: Nanos | None = None


def test_a_message_field_must_be_optional_or_defaulted() -> None:
    with pytest.raises(TypeError, match="give a default or make the field optional"):
        @message
        class Broken(Message):
            probe: Probe


def test_the_loader_gives_every_resource_of_a_message_kind_its_view(tmp_path: Any) -> None:
    source = tmp_path / "dr.yaml"
    source.write_text("""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 100, connectTimeout: 250ms}}
  subsets: [{name: v1, labels: {version: v1}}]
""")
    (resource,) = load([str(source)]).resources
    rule = resource.view_as(DestinationRule)
    assert rule.host == "reviews"
    assert rule.traffic_policy is not None and rule.traffic_policy.connection_pool is not None
    tcp = rule.traffic_policy.connection_pool.tcp
    assert tcp is not None and (tcp.max_connections, tcp.connect_timeout) == (100, 250_000_000)
    assert [(s.name, dict(s.labels)) for s in rule.subsets] == [("v1", {"version": "v1"})]


def test_kind_schemas_come_from_their_messages() -> None:
    info = KINDS[("networking.istio.io", "DestinationRule")]
    assert info.schema is DestinationRule.SCHEMA
    assert "trafficPolicy" in info.schema.fields and "traffic_policy" not in info.schema.fields


@message(free=["probes", "resources"])
class Partly(Message):
    """A message whose wire form has parts the view leaves out, and an int-or-string field."""

    name: str = ""
    target: int | str | None = field(Free())


def test_free_fields_are_accepted_as_anything_but_left_out_of_the_view() -> None:
    found: list[tuple[tuple[Any, ...], str]] = []
    Partly.SCHEMA.check({"name": "x", "probes": [1, {"a": None}], "resources": "any", "prob": 1}, (),
                        lambda path, text: found.append((path, text)))
    assert found == [(("prob",), "unknown field 'prob' (did you mean 'probes'?)")]
    assert Partly.of({"name": "x", "probes": [1]}) == Partly(name="x")
    assert not hasattr(Partly.of({}), "probes")


def test_a_field_cannot_also_be_free() -> None:
    with pytest.raises(TypeError, match="name is both a field and free"):
        @message(free=["name"])
        class Broken(Message):
            name: str = ""


def test_a_union_of_types_keeps_the_value_as_validated() -> None:
    assert [Partly.of({"target": value}).target for value in (8080, "http", None)] == [8080, "http", None]


def test_a_union_of_types_needs_an_explicit_schema() -> None:
    with pytest.raises(TypeError, match="cannot infer a schema"):
        @message
        class Broken(Message):
            target: int | str | None = None
