"""The encoder writes each resource's `Any` itself from the bytes Packed keeps: what Envoy parses
must be that Any, with no byte more than serializing the message would give (an empty value or
type URL is left out, as protobuf leaves it out), at every length of varint."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2

from meshctl.resources import CLUSTER, Packed
from meshctl.xds.encoding import Encoder
from meshctl.xds.state import placeholder

ITEMS = [
    Packed.of("small", cluster_pb2.Cluster(name="small")),
    Packed.of("large", cluster_pb2.Cluster(name="large", alt_stat_name="x" * 300_000)),  # 3-byte lengths
    Packed("empty", "0", CLUSTER, b""),
    Packed("untyped", "1", "", b"\x0a\x01z"),
    Packed.assembled("pieces", "2", CLUSTER, ((b"\x0a\x06",), (b"pie", b""), (b"ces",)), 8),  # written unjoined
]


def _expected(items: list[Packed]) -> list[discovery_pb2.Resource]:
    return [discovery_pb2.Resource(name=p.name, version=p.version, resource=p.to_any()) for p in items]


@pytest.mark.parametrize("share", [True, False])
def test_sotw_entries_are_the_anys_serialization_would_give(share: bool) -> None:
    placeholders = [p for p in [placeholder(CLUSTER, "missing")] if p is not None]
    items = ITEMS + placeholders
    payload = Encoder().sotw(CLUSTER, "v1", "n1", items, share=share)
    response = discovery_pb2.DiscoveryResponse.FromString(payload)
    assert list(response.resources) == [p.to_any() for p in items]
    assert (response.version_info, response.type_url, response.nonce) == ("v1", CLUSTER, "n1")
    assert len(response.SerializeToString()) == len(payload)


def test_delta_entries_are_the_resources_serialization_would_give() -> None:
    encoder = Encoder()
    for _ in range(3):  # first use, then the kept entry, then its bytes reused
        payload = encoder.delta(CLUSTER, "v1", "n1", ITEMS, ["gone"])
        response = discovery_pb2.DeltaDiscoveryResponse.FromString(payload)
        assert list(response.resources) == _expected(ITEMS)
        assert list(response.removed_resources) == ["gone"]
        assert len(response.SerializeToString()) == len(payload)
