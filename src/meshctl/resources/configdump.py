"""Packed resources as Envoy's admin `/config_dump` shows them.

`translate -o json`, serve's `istio.io/debug/config_dump` and the expected side of `proxy-status`
all render the same objects this way, so tools that read a real Envoy's dump read these too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from meshctl.resources.kinds import KINDS, PUSH_ORDER
from meshctl.resources.packed import ProxyResources

if TYPE_CHECKING:
    from envoy.admin.v3 import config_dump_pb2


def to_config_dump(resources: ProxyResources, version_info: str = "",
                   types: Iterable[str] = PUSH_ORDER) -> config_dump_pb2.ConfigDump:
    """The resources as Envoy's admin `/config_dump` shows dynamic config (with `include_eds`).

    One section per kind the resources hold (even none of it), in push order; `types` picks
    which kinds appear. Sections that carry a version (clusters, listeners) get `version_info`;
    every entry carries its resource's own version. The admin protos (they pull in the whole
    bootstrap tree) are imported here, not at start-up: serve opens its port before it needs them.
    """
    from envoy.admin.v3 import config_dump_pb2

    wanted = set(types)
    dump = config_dump_pb2.ConfigDump()
    for kind in KINDS:
        if kind.dump is None or kind.type_url not in wanted or kind.type_url not in resources:
            continue
        section = kind.dump.section_class()()
        if version_info and "version_info" in section.DESCRIPTOR.fields_by_name:
            section.version_info = version_info
        entries = getattr(section, kind.dump.entries)
        *path, leaf = kind.dump.resource.split(".")
        for item in resources[kind.type_url].values():
            entry = entries.add()
            if "name" in entry.DESCRIPTOR.fields_by_name:
                entry.name = item.name
            holder = entry
            for step in path:
                holder = getattr(holder, step)
            holder.version_info = item.version
            getattr(holder, leaf).CopyFrom(item.resource)
        dump.configs.add().Pack(section)
    return dump
