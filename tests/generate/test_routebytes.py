"""Route configurations assembled from serialized virtual hosts in blocks: whatever the number
of hosts and whichever of them an update replaces, the pieces are the bytes serializing the
message gives, and the version is the one the same hosts built whole give."""

from __future__ import annotations

import pytest
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2

from meshctl.blocks import BLOCK
from meshctl.generate.routebytes import AssembledRoutes, HostBlocks, SerializedHost
from meshctl.resources import ROUTE, Packed


def _host(index: int, cluster: str = "a") -> SerializedHost:
    vhost = rc.VirtualHost(name=f"h{index}:80", domains=[f"h{index}"])
    vhost.routes.add().route.cluster = f"{cluster}{index}"
    return SerializedHost.of(vhost)


def _template() -> route_pb2.RouteConfiguration:
    template = route_pb2.RouteConfiguration(name="80", ignore_port_in_host_matching=True)
    template.validate_clusters.value = False
    return template


def _serialized(hosts: list[SerializedHost]) -> bytes:
    """What serializing the whole message gives (each host parsed back from its field, which
    is the VirtualHost's tag, length and bytes)."""
    config = _template()
    for host in hosts:
        config.MergeFromString(host.field)
    return config.SerializeToString(deterministic=True)


@pytest.mark.parametrize("count", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 7])
def test_pieces_are_the_serialized_message(count: int) -> None:
    hosts = [_host(i) for i in range(count)]
    packed = AssembledRoutes(_template(), hosts).packed()
    expected = _serialized(hosts)
    assert packed.value == expected
    assert packed.size == len(expected)
    assert b"".join(packed.pieces()) == expected
    assert (packed.name, packed.type_url) == ("80", ROUTE)


@pytest.mark.parametrize("count", [1, BLOCK, BLOCK + 1, 3 * BLOCK + 7])
def test_an_update_gives_what_a_build_with_the_same_hosts_gives(count: int) -> None:
    hosts = [_host(i) for i in range(count)]
    blocks = HostBlocks(hosts)
    positions = sorted({0, count - 1, count // 2, min(BLOCK, count - 1)})
    changes = {position: _host(position, cluster="b") for position in positions}
    updated = blocks.replaced(changes)
    whole = HostBlocks([changes.get(i, host) for i, host in enumerate(hosts)])
    assert list(updated) == list(whole) == [updated[i] for i in range(count)]
    assert (updated.digests(), updated.field_blocks(), updated.size, len(updated)) == \
        (whole.digests(), whole.field_blocks(), whole.size, len(whole))
    before, after = AssembledRoutes(_template(), blocks).packed(), AssembledRoutes(_template(), updated).packed()
    cold = AssembledRoutes(_template(), [changes.get(i, host) for i, host in enumerate(hosts)]).packed()
    assert after == cold and after.version == cold.version
    assert after.version != before.version
    assert after.value == _serialized(list(whole))
    untouched = [i for i in range(len(blocks.field_blocks())) if not any(p // BLOCK == i for p in positions)]
    assert all(blocks.field_blocks()[i] is updated.field_blocks()[i] for i in untouched)


def test_a_host_moved_to_another_place_changes_the_version() -> None:
    """The version hashes the hosts in their order: two hosts swapped are another configuration."""
    hosts = [_host(i) for i in range(BLOCK + 2)]
    swapped = HostBlocks(hosts).replaced({1: hosts[BLOCK + 1], BLOCK + 1: hosts[1]})
    assert AssembledRoutes(_template(), hosts).packed().version != AssembledRoutes(_template(), swapped).packed().version


def test_a_position_out_of_range_is_refused() -> None:
    blocks = HostBlocks([_host(0)])
    with pytest.raises(IndexError):
        blocks.replaced({1: _host(1)})
    with pytest.raises(IndexError):
        blocks[1]  # noqa: B018


def test_a_packed_resource_in_pieces_equals_the_same_bytes_whole() -> None:
    pieces = Packed.assembled("r", "v", ROUTE, ((b"ab",), (b"c", b"de")), 5)
    whole = Packed("r", "v", ROUTE, b"abcde")
    assert pieces == whole and hash(pieces) == hash(whole)
    assert (pieces.value, pieces.size, list(whole.pieces())) == (b"abcde", 5, [b"abcde"])
    assert pieces != Packed("r", "v", ROUTE, b"abcdf")
    with pytest.raises(AttributeError):
        pieces.version = "w"  # type: ignore[misc]


@pytest.mark.parametrize("name, domains, routes", [
    ("h:80", ["h", "h.", "10.0.0.1"], 2),
    ("", [], 0),
    ("x" * 200, ["", "d" * 300], 40),
])
def test_an_outbound_host_is_the_virtual_host_serialized(name: str, domains: list[str], routes: int) -> None:
    built = [rc.Route(name=f"r{index}") for index in range(routes)]
    for index, route in enumerate(built):
        route.route.cluster = f"outbound|80||h{index}"
        route.metadata.filter_metadata["istio"].fields["config"].string_value = "/apis/x"
    for counts in (True, False):
        vhost = rc.VirtualHost(name=name, domains=domains, include_request_attempt_count=counts)
        vhost.routes.extend(built)
        serialized = [route.SerializeToString(deterministic=True) for route in built]
        assert SerializedHost.outbound(name, domains, serialized, counts).field == SerializedHost.of(vhost).field
