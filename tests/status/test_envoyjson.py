"""The fast protobuf-to-JSON-data conversion against protobuf's own JSON printer."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2, wrappers_pb2

from meshctl.inspect.configdump import parse_config_dump
from meshctl.status.envoyjson import EnvoyJson

INSPECT_DATA = Path(__file__).resolve().parents[1] / "inspect" / "data"


@pytest.mark.parametrize("name", ["sidecar_dump.json", "gateway_dump_camel.json", "spiffe_secrets.json"])
def test_same_data_as_protobufs_printer_on_real_dumps(name: str) -> None:
    dump = parse_config_dump((INSPECT_DATA / name).read_bytes(), name)
    converter = EnvoyJson(dump.pool)
    for section in dump.message.configs:
        expected = json_format.MessageToDict(section, preserving_proto_field_name=True, descriptor_pool=dump.pool)
        assert converter.data(section) == expected, section.type_url


@pytest.mark.parametrize(
    ("message", "data"),
    [
        (duration_pb2.Duration(seconds=10), "10s"),
        (duration_pb2.Duration(seconds=1, nanos=500_000_000), "1.500s"),
        (duration_pb2.Duration(nanos=1_000), "0.000001s"),
        (duration_pb2.Duration(seconds=-1, nanos=-1), "-1.000000001s"),
        (timestamp_pb2.Timestamp(seconds=1780315200, nanos=123_000_000), "2026-06-01T12:00:00.123Z"),
        (timestamp_pb2.Timestamp(seconds=-1), "1969-12-31T23:59:59Z"),
        (wrappers_pb2.UInt64Value(value=2**63), str(2**63)),
        (wrappers_pb2.UInt32Value(value=4294967295), 4294967295),
        (wrappers_pb2.BytesValue(value=b"\x00\xff"), "AP8="),
        (wrappers_pb2.DoubleValue(value=float("inf")), "Infinity"),
    ],
)  # fmt: skip
def test_well_known_types(message: object, data: object) -> None:
    converter = EnvoyJson(None)  # type: ignore[arg-type]
    assert converter.data(message) == data
    assert json_format.MessageToDict(message) == data


def test_struct_and_maps() -> None:
    from envoy.config.core.v3 import base_pb2

    metadata = base_pb2.Metadata()
    metadata.filter_metadata["istio"].update({"config": "/apis/x", "n": 1, "flag": True, "nothing": None, "list": [1, "a"]})
    assert EnvoyJson(None).data(metadata) == {  # type: ignore[arg-type]
        "filter_metadata": {"istio": {"config": "/apis/x", "n": 1.0, "flag": True, "nothing": None, "list": [1.0, "a"]}}
    }
    assert EnvoyJson(None).data(struct_pb2.Value()) is None  # type: ignore[arg-type]
