"""`proxy-config ecds`: extension configs delivered by ECDS (`configdump/ecds.go`), padding 5."""

from __future__ import annotations

from typing import Any

from meshctl.inspect.configdump import ConfigDump
from meshctl.inspect.gosort import sort_slice
from meshctl.inspect.tabwriter import tabulate
from meshctl.resources import TYPE_PREFIX

__all__ = ["ecds_table", "sorted_extension_configs"]


def sorted_extension_configs(dump: ConfigDump) -> list[Any]:
    """The TypedExtensionConfigs of every ECDS section, ordered by type URL, then name."""
    from envoy.config.core.v3.extension_pb2 import TypedExtensionConfig

    configs = [TypedExtensionConfig.FromString(item.ecds_filter.value) for item in dump.ecds().ecds_filters]
    sort_slice(configs, _less)
    return configs


def ecds_table(dump: ConfigDump) -> str:
    """ECDS NAME / TYPE, the type being the config's type URL without `type.googleapis.com/`
    (empty when the config has none, as for Istio's telemetry placeholders)."""
    lines = ["ECDS NAME\tTYPE\n"]
    for config in sorted_extension_configs(dump):
        lines.append(f"{config.name}\t{config.typed_config.type_url.removeprefix(TYPE_PREFIX)}\n")
    return tabulate("".join(lines), padding=5)


def _less(left: Any, right: Any) -> bool:
    if left.typed_config.type_url == right.typed_config.type_url:
        return left.name < right.name
    return left.typed_config.type_url < right.typed_config.type_url
