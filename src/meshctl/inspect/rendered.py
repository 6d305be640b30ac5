"""A translated proxy config shown the way a live one is: what `meshctl translate` prints.

The generator's output becomes the ConfigDump the proxy's Envoy would print at
`/config_dump` (`-o json`, Envoy's snake_case; `-o yaml`), or `proxy-config`'s tables of it
(`-o short`), so the expected and the actual config of a proxy can be read and diffed alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from envoy.admin.v3.config_dump_pb2 import ConfigDump as ConfigDumpMessage
from google.protobuf import descriptor_pool, json_format

from meshctl import resources
from meshctl.formats import OutputFormat, to_yaml
from meshctl.inspect.configdump import ConfigDump
from meshctl.inspect.tables.clusters import ClusterFilter, clusters_table
from meshctl.inspect.tables.eds import eds_table
from meshctl.inspect.tables.endpoints import EndpointFilter
from meshctl.inspect.tables.listeners import ListenerFilter, listeners_table
from meshctl.inspect.tables.routes import RouteFilter, routes_table
from meshctl.inspect.tables.summary import banner

__all__ = ["SECTIONS", "config_dump", "render"]

_TYPES = {
    "all": resources.PUSH_ORDER,
    "listeners": (resources.LISTENER,),
    "routes": (resources.ROUTE,),
    "clusters": (resources.CLUSTER,),
    "endpoints": (resources.ENDPOINT,),
}
SECTIONS = tuple(_TYPES)
"""What `render` can show: one xDS type, or all of them in push order."""


def render(packed: resources.ProxyResources, section: str, output: OutputFormat) -> str:
    """The resources of a section (one of `SECTIONS`) as a ConfigDump in JSON or YAML, or as
    istioctl's tables."""
    dump = config_dump(packed, section)
    if output is OutputFormat.short:
        return _tables(dump, section)
    text = json_format.MessageToJson(dump, preserving_proto_field_name=True, indent=1)
    return text if output is OutputFormat.json else to_yaml(json.loads(text))


def config_dump(packed: resources.ProxyResources, section: str) -> ConfigDumpMessage:
    """The ConfigDump of one section (or all), as Envoy's admin endpoint would return it."""
    return resources.to_config_dump(packed, types=_TYPES[section])


def _tables(dump: ConfigDumpMessage, section: str) -> str:
    """The sections as `meshctl proxy-config` (istioctl) tables, each under its title (as
    `proxy-config all --with-headers` has them), a blank line apart."""
    parsed = ConfigDump(dump, descriptor_pool.Default())
    tables: dict[str, tuple[str, Callable[[], str]]] = {
        "clusters": ("CLUSTER INFO", lambda: clusters_table(parsed, ClusterFilter())),
        "listeners": ("LISTENER INFO", lambda: listeners_table(parsed, ListenerFilter())),
        "routes": ("ROUTE INFO", lambda: routes_table(parsed, RouteFilter(), wide=True)),
        "endpoints": ("ENDPOINTS INFO", lambda: eds_table(parsed, EndpointFilter())),
    }
    chosen = list(tables) if section == "all" else [section]
    return "\n".join(banner(tables[name][0]) + tables[name][1]().rstrip("\n") + "\n" for name in chosen)
