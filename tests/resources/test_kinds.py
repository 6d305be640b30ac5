"""The table of xDS kinds: every entry resolves to the real Envoy types it names."""

from __future__ import annotations

import pytest
from envoy.admin.v3 import config_dump_shared_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2

from meshctl.resources import (
    CLUSTER,
    ENDPOINT,
    FULL_STATE,
    KINDS,
    LISTENER,
    PUSH_ORDER,
    ROUTE,
    SECRET,
    Kind,
    Packed,
    push_rank,
    short_name,
    to_config_dump,
    type_url_of,
)


@pytest.mark.parametrize("kind", [k for k in KINDS if k.module], ids=lambda k: k.short)
def test_each_kind_names_its_message_its_name_field_and_its_dump_section(kind: Kind) -> None:
    message_class = kind.message_class()
    assert type_url_of(message_class) == kind.type_url
    empty = kind.empty("some-name")
    assert kind.name_of(empty) == "some-name" and type(empty) is message_class
    if kind.dump is not None:
        section = kind.dump.section_class()()
        entry = getattr(section, kind.dump.entries).add()
        *path, leaf = kind.dump.resource.split(".")
        for step in path:
            entry = getattr(entry, step)
        assert entry.DESCRIPTOR.fields_by_name[leaf].message_type.full_name == "google.protobuf.Any"
        assert "version_info" in entry.DESCRIPTOR.fields_by_name


def test_short_names_push_order_and_full_state() -> None:
    assert [short_name(url) for url in PUSH_ORDER] == ["CDS", "EDS", "LDS", "RDS", "SDS", "ECDS", "NDS", "PCDS", "WDS", "WADS"]
    assert short_name("type.googleapis.com/some.Other") == "type.googleapis.com/some.Other"
    assert FULL_STATE == {CLUSTER, LISTENER}
    assert sorted([ROUTE, "type.googleapis.com/z.Unknown", LISTENER, ENDPOINT, CLUSTER], key=push_rank) == \
        [CLUSTER, ENDPOINT, LISTENER, ROUTE, "type.googleapis.com/z.Unknown"]


def test_config_dump_sections_in_envoys_shape() -> None:
    cluster = Packed.of("c", cluster_pb2.Cluster(name="c", type=cluster_pb2.Cluster.EDS))
    assignment = Packed.of("c", endpoint_pb2.ClusterLoadAssignment(cluster_name="c"))
    listener = Packed.of("l", listener_pb2.Listener(name="l"))
    resources = {CLUSTER: {"c": cluster}, ENDPOINT: {"c": assignment}, LISTENER: {"l": listener}, ROUTE: {}}
    dump = to_config_dump(resources, "v9")
    assert [c.type_url.rsplit(".", 1)[1] for c in dump.configs] == \
        ["ClustersConfigDump", "EndpointsConfigDump", "ListenersConfigDump", "RoutesConfigDump"]
    clusters, endpoints, listeners, routes = (
        kind.dump.section_class().FromString(config.value) for kind, config in zip(KINDS, dump.configs, strict=False))
    assert clusters.version_info == "v9" and clusters.dynamic_active_clusters[0].version_info == cluster.version
    assert clusters.dynamic_active_clusters[0].cluster == cluster.to_any()
    assert endpoints.dynamic_endpoint_configs[0].endpoint_config == assignment.to_any()
    [entry] = listeners.dynamic_listeners
    assert (entry.name, entry.active_state.version_info, listeners.version_info) == ("l", listener.version, "v9")
    assert entry.active_state.listener == listener.to_any()
    assert not routes.dynamic_route_configs
    only = to_config_dump(resources, types=[LISTENER, SECRET])
    assert [c.type_url for c in only.configs] == [type_url_of(config_dump_shared_pb2.ListenersConfigDump)]
