"""Byte templates: a message serialized once with markers, each resource's strings spliced in,
must give byte for byte what serializing the message built with those strings gives, whatever
the strings (empty, long enough to lengthen an enclosing length, not ASCII); and translation
rendering from templates must give what building every resource gives, for services alike in
shape and different in every name."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from meshctl.config.loader import load_data
from meshctl.generate import templates
from meshctl.generate.proxy import generate
from meshctl.generate.templates import ByteTemplate, ShapeTemplates, slot
from meshctl.model.snapshot import build_snapshot


def _cluster(strings: Sequence[str]) -> cluster_pb2.Cluster:
    """A cluster holding its strings where translation puts a service's: names (a plain
    proto3 string, left out when empty), Struct metadata (a map of oneof strings, kept when
    empty), a repeated string, and the SNI and SAN of a TLS context packed in an Any."""
    host, name, san = strings
    cluster = cluster_pb2.Cluster(name=f"outbound|80||{host}", alt_stat_name=host, type=cluster_pb2.Cluster.EDS)
    cluster.eds_cluster_config.service_name = host
    cluster.connect_timeout.seconds = 10
    istio = cluster.metadata.filter_metadata["istio"].fields
    entry = istio["services"].list_value.values.add().struct_value.fields
    entry["host"].string_value = host
    entry["name"].string_value = name
    entry["namespace"].string_value = "constant"
    context = tls_pb2.UpstreamTlsContext(sni=f"outbound_.80_._.{host}")
    context.common_tls_context.alpn_protocols.extend(("istio", name))
    matcher = context.common_tls_context.combined_validation_context.default_validation_context
    matcher.match_typed_subject_alt_names.add(san_type=2).matcher.exact = san
    match = cluster.transport_socket_matches.add(name="tlsMode-istio")
    match.transport_socket.name = "envoy.transport_sockets.tls"
    match.transport_socket.typed_config.Pack(context, deterministic=True)
    return cluster


_MARKS = (slot(0), slot(1), slot(2))
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\ue000\ue001"), max_size=300)


@settings(max_examples=200, deadline=None)
@given(st.tuples(_TEXT, _TEXT, _TEXT))
def test_render_is_the_serialization_of_the_message_with_those_strings(values: tuple[str, str, str]) -> None:
    template = ByteTemplate(_cluster(_MARKS), 3)
    assert template.render(values) == _cluster(values).SerializeToString(deterministic=True)


@pytest.mark.parametrize("size", [0, 1, 100, 127, 128, 129, 16_000, 16_383, 16_384, 70_000])
def test_render_at_every_length_boundary(size: int) -> None:
    """Enclosing lengths cross a varint byte (128, 16384) as a value grows; each combination
    of lengths is laid out once and reused, so the same lengths twice must render alike too."""
    template = ByteTemplate(_cluster(_MARKS), 3)
    for host in ("h" * size, "é" * (size // 2), "x" * size):
        values = (host, "n", "spiffe://td/ns/a/sa/b")
        assert template.render(values) == _cluster(values).SerializeToString(deterministic=True)


def test_an_empty_plain_string_is_left_out_and_an_empty_oneof_string_kept() -> None:
    template = ByteTemplate(_cluster(_MARKS), 3)
    rendered = cluster_pb2.Cluster.FromString(template.render(("", "", "")))
    assert rendered.alt_stat_name == "" and rendered.name == "outbound|80||"
    assert rendered.HasField("eds_cluster_config")  # present though its only field is empty
    entry = rendered.metadata.filter_metadata["istio"].fields["services"].list_value.values[0].struct_value.fields
    assert entry["host"].WhichOneof("kind") == "string_value"
    assert template.render(("", "", "")) == _cluster(("", "", "")).SerializeToString(deterministic=True)


def test_values_must_match_the_slots() -> None:
    template = ByteTemplate(_cluster(_MARKS), 3)
    with pytest.raises(ValueError, match="3 slots, given 2"):
        template.render(("a", "b"))
    with pytest.raises(ValueError, match="value 2, of 2"):
        ByteTemplate(_cluster(_MARKS), 2)


def test_a_marker_in_a_map_key_is_refused() -> None:
    """Deterministic serialization sorts map entries by key: a key a value fills could move."""
    metadata = base_pb2.Metadata()
    metadata.filter_metadata[slot(0)].fields["a"].string_value = "b"
    with pytest.raises(ValueError, match="map key"):
        ByteTemplate(metadata, 1)


def test_a_marker_in_an_any_type_url_is_refused() -> None:
    with pytest.raises(ValueError, match="type URL"):
        ByteTemplate(any_pb2.Any(type_url=f"type.googleapis.com/{slot(0)}"), 1)


def _counting(build: Callable[[Sequence[str]], list[Message]]) -> tuple[list[int], Callable[[Sequence[str]], list[Message]]]:
    calls: list[int] = []

    def counted(strings: Sequence[str]) -> list[Message]:
        calls.append(1)
        return build(strings)

    return calls, counted


def test_a_shape_is_built_twice_and_then_rendered() -> None:
    """Built alone the first time (a shape seen once costs one build), then built with
    markers too, then rendered."""
    store = ShapeTemplates()
    calls, build = _counting(lambda strings: [_cluster(strings)])
    first = store.serialized("shape", ("a.ns", "a", "spiffe://td/a"), _MARKS, build)
    assert len(calls) == 1
    second = store.serialized("shape", ("bb.other", "bb", "spiffe://td/bb"), _MARKS, build)
    assert len(calls) == 3  # built, then built with markers
    third = store.serialized("shape", ("c", "ccc", "spiffe://td/c"), _MARKS, build)
    assert len(calls) == 3
    assert first == [_cluster(("a.ns", "a", "spiffe://td/a")).SerializeToString(deterministic=True)]
    assert second == [_cluster(("bb.other", "bb", "spiffe://td/bb")).SerializeToString(deterministic=True)]
    assert third == [_cluster(("c", "ccc", "spiffe://td/c")).SerializeToString(deterministic=True)]


def test_a_shape_whose_markers_do_not_give_its_bytes_back_is_always_built(caplog: pytest.LogCaptureFixture) -> None:
    """A choice the shape misses (here the host's length, as a number) makes the marked build
    differ from the real one: that shape is built every time, and every result is right."""

    def build(strings: Sequence[str]) -> list[Message]:
        cluster = _cluster(strings)
        cluster.per_connection_buffer_limit_bytes.value = len(strings[0])
        return [cluster]

    store = ShapeTemplates()
    calls, counted = _counting(build)
    with caplog.at_level(logging.DEBUG, logger="meshctl.generate.templates"):
        for host in ("a", "bbbbbbbb", "cc"):
            values = (host, "n", "s")
            assert store.serialized(("cluster", 1), values, _MARKS, counted) == [
                build(values)[0].SerializeToString(deterministic=True)]
    assert len(calls) == 4  # the second twice (to try a template), then once each
    assert [record.getMessage() for record in caplog.records] == [
        "a cluster shape is built each time: its templates do not give its bytes back"]


@pytest.mark.parametrize("shape", [None, ("policy", {"a mapping": "unhashable"})])
def test_no_shape_or_an_unhashable_one_is_never_templated(shape: Any) -> None:
    store = ShapeTemplates()
    calls, build = _counting(lambda strings: [_cluster(strings)])
    for host in ("a", "b"):
        values = (host, "n", "s")
        assert store.serialized(shape, values, _MARKS, build) == [_cluster(values).SerializeToString(deterministic=True)]
    assert len(calls) == 2


_NAMES = st.from_regex(r"[a-z]([a-z0-9-]{0,40}[a-z0-9])?", fullmatch=True)


def _service(name: str, namespace: str, subsets: bool, tls: str | None, policy: bool) -> str:
    rule: dict[str, Any] = {}
    if policy:
        rule["trafficPolicy"] = {"connectionPool": {"tcp": {"maxConnections": 7}}}
    if tls:
        rule.setdefault("trafficPolicy", {})["tls"] = {"mode": tls}
    if subsets:
        rule["subsets"] = [{"name": "v1", "labels": {"version": "v1"}},
                           {"name": "v2", "labels": {"version": "v2"}, "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}]
    docs = [f"""apiVersion: v1
kind: Service
metadata: {{name: "{name}", namespace: "{namespace}"}}
spec:
  ports: [{{name: http, port: 8080}}, {{name: tcp, port: 9000}}]
  selector: {{app: "{name}"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: "{name}-0", namespace: "{namespace}", labels: {{app: "{name}", version: v1}}}}
spec: {{serviceAccountName: "{name}", containers: [{{name: app, image: app}}]}}
status: {{podIP: 10.1.{len(name)}.{len(namespace)}}}"""]
    if rule:
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: "{name}", namespace: "{namespace}"}}
spec: {json.dumps({"host": name, **rule})}""")
    return "\n---\n".join(docs)


_SHAPE = st.tuples(st.booleans(), st.sampled_from([None, "ISTIO_MUTUAL", "DISABLE", "SIMPLE"]), st.booleans())


@st.composite
def _mesh(draw: st.DrawFn) -> list[tuple[str, str, bool, str | None, bool]]:
    """Services in a few shapes (a rule with subsets or not, its TLS mode, a pool limit): most
    share their shape with another, in another namespace, with names of other lengths."""
    shapes = draw(st.lists(_SHAPE, min_size=1, max_size=2))
    entries = draw(st.lists(st.tuples(_NAMES, st.sampled_from(["a", "b-namespace", "c" * 60]),
                                      st.integers(0, len(shapes) - 1)),
                            min_size=2, max_size=6, unique_by=lambda entry: (entry[0], entry[1])))
    return [(name, namespace, *shapes[shape]) for name, namespace, shape in entries]


@settings(max_examples=40, deadline=None)
@given(_mesh())
def test_translation_from_templates_is_translation_built_whole(services: list[tuple[str, str, bool, str | None, bool]],
                                                                ) -> None:
    """Services alike in shape but not in names, namespaces (one of them without mTLS) and
    lengths: every resource rendered from a template is the one building it gives."""
    peer = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: "mtls-off", namespace: b-namespace}
spec: {mtls: {mode: DISABLE}}"""
    text = "\n---\n".join([peer, *(_service(*entry) for entry in services)])
    loaded = load_data(text.encode(), "mesh.yaml")
    assert not loaded.problems, loaded.problems[:3]
    snapshot = build_snapshot(list(loaded.resources))
    proxy = snapshot.proxy(f"{services[0][0]}-0.{services[0][1]}")
    rendered = _bytes(generate(snapshot, proxy).packed())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(templates.ShapeTemplates, "serialized",
                      lambda self, shape, values, marks, build: [m.SerializeToString(deterministic=True)
                                                                 for m in build(values)])
        built = _bytes(generate(snapshot, proxy).packed())
    assert rendered == built


def test_the_benchmark_mesh_is_rendered_from_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated mesh's services share one shape: after the first two, each one's clusters,
    endpoints and routes are rendered, and the output is what building them all gives."""
    import sys

    from testsupport import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from meshgen import mesh_yaml
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    snapshot = build_snapshot(list(load_data(mesh_yaml(12).encode(), "mesh.yaml").resources))
    proxy = snapshot.proxy("svc0-0.ns0")
    renders: list[int] = []
    render = ByteTemplate.render_encoded
    monkeypatch.setattr(ByteTemplate, "render_encoded",
                        lambda self, encoded, sizes: renders.append(1) or render(self, encoded, sizes))
    rendered = _bytes(generate(snapshot, proxy).packed())
    assert len(renders) >= 10 * 3 + 10 * 3 - 3 + 10 * 2  # clusters, endpoints and routes of all services but two
    monkeypatch.setattr(templates.ShapeTemplates, "serialized",
                        lambda self, shape, values, marks, build: [m.SerializeToString(deterministic=True)
                                                                   for m in build(values)])
    assert _bytes(generate(snapshot, proxy).packed()) == rendered


def _bytes(packed: dict[str, dict[str, Any]]) -> dict[str, dict[str, bytes]]:
    return {kind: {name: item.value for name, item in items.items()} for kind, items in packed.items()}


def _routes(host: str, other: str) -> list[list[dict[str, Any]]]:
    """VirtualService rules in the shapes sidecar routes are templated by (generate.routeshapes),
    and in those built each time (mirrors, hashing destinations), for service `host`; `other`
    is another service's host."""
    to = {"destination": {"host": host}}
    return [
        [{"route": [to]}],
        [{"match": [{"headers": {"end-user": {"exact": "jason"}}, "uri": {"prefix": "/"}}],
          "route": [{"destination": {"host": host, "subset": "v2"}}]},
         {"route": [{"destination": {"host": host, "subset": "v1"}}]}],
        [{"name": "split", "route": [{"destination": {"host": host, "subset": "v1"}, "weight": 70},
                                     {"destination": {"host": other, "subset": "v2"}, "weight": 30},
                                     {"destination": {"host": host}, "weight": 0}]}],
        [{"match": [{"uri": {"exact": "/old"}, "name": "old"}, {"queryParams": {"q": {"regex": "a.*"}}}],
          "redirect": {"uri": "/new", "authority": host}},
         {"match": [{"withoutHeaders": {"x-skip": {}}, "ignoreUriCase": True}], "route": [to], "timeout": "3s",
          "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx,503"}},
         {"directResponse": {"status": 404, "body": {"string": host}}}],
        [{"match": [{"uri": {"prefix": "/m"}}], "route": [to], "mirror": {"host": other}},
         {"route": [{"destination": {"host": host, "port": {"number": 8080}},
                     "headers": {"request": {"set": {"x-a": host}}}}],
          "rewrite": {"uri": "/x", "authority": other}, "headers": {"response": {"add": {"x-r": "1"}}},
          "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 10}}},
          "corsPolicy": {"allowOrigins": [{"exact": "https://a"}]}}],
        [{"route": [{"destination": {"host": "missing.example.com"}}]}],
    ]


_VS_NAMES = st.lists(st.tuples(_NAMES, st.sampled_from(["a", "b-namespace", "c" * 60])), min_size=3, max_size=8,
                     unique=True)


@settings(max_examples=40, deadline=None)
@given(_VS_NAMES, st.lists(st.integers(0, len(_routes("", "")) - 1), min_size=1, max_size=3),
       st.booleans())
def test_routes_from_templates_are_routes_built_whole(services: list[tuple[str, str]], shapes: list[int],
                                                       hashing: bool) -> None:
    """VirtualServices in a few shapes (each shape for several services, of other names and
    lengths): every sidecar route rendered from a template is the one building it gives, and
    the warnings are the same."""
    docs = []
    for index, (name, namespace) in enumerate(services):
        host = f"{name}.{namespace}.svc.cluster.local"
        other = f"{services[index - 1][0]}.{services[index - 1][1]}.svc.cluster.local"
        docs.append(_service(name, namespace, True, None, False))
        if hashing and index % 2:
            docs.append(f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: "{name}-hash", namespace: "{namespace}"}}
spec: {json.dumps({"host": other, "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpHeaderName": "u"}}}})}""")
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: "{name}", namespace: "{namespace}"}}
spec: {json.dumps({"hosts": [name], "http": _routes(host, other)[shapes[index % len(shapes)]]})}""")
    loaded = load_data("\n---\n".join(docs).encode(), "mesh.yaml")
    assert not loaded.problems, loaded.problems[:3]
    snapshot = build_snapshot(list(loaded.resources))
    proxy = snapshot.proxy(f"{services[0][0]}-0.{services[0][1]}")
    generated = generate(snapshot, proxy)
    rendered = _bytes(generated.packed())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(templates.ShapeTemplates, "serialized",
                      lambda self, shape, values, marks, build: [m.SerializeToString(deterministic=True)
                                                                 for m in build(values)])
        built = generate(snapshot, proxy)
    assert rendered == _bytes(built.packed())
    assert generated.warnings == built.warnings
