"""The questions meshctl asks an Envoy admin endpoint, in one place (a light module: `explain`
sends some before importing what reads the answers).

Envoy builds every section of its config dump for each `/config_dump` question and then keeps
what `?resource=`, `?mask=` and `?name_regex=` select, so a question costs about the same
whatever it selects (15-25 ms at a thousand services) and asking few matters; selecting little
still saves the JSON Envoy writes and meshctl reads. `/server_info` is answered without a dump.
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = [
    "BOOTSTRAP_PATH",
    "CLUSTERS_PATH",
    "CLUSTER_LISTS",
    "ECDS_PATH",
    "EDS_PATH",
    "EMPTY_DUMP",
    "ENDPOINTS_PATH",
    "EVERYTHING_PATH",
    "LISTENERS_PATH",
    "ROUTES_PATH",
    "SECRETS_PATH",
    "SERVER_INFO_PATH",
    "by_name",
]

CLUSTERS_PATH = "config_dump?mask=dynamic_active_clusters,static_clusters"
CLUSTER_LISTS = ("static_clusters", "dynamic_active_clusters")
LISTENERS_PATH = "config_dump?mask=dynamic_listeners,static_listeners"
ROUTES_PATH = "config_dump?mask=dynamic_route_configs,static_route_configs"
ENDPOINTS_PATH = "clusters?format=json"
EDS_PATH = "config_dump?include_eds&mask=dynamic_endpoint_configs,static_endpoint_configs"
SECRETS_PATH = "config_dump?mask=dynamic_active_secrets,dynamic_warming_secrets"
BOOTSTRAP_PATH = "config_dump?mask=bootstrap"
ECDS_PATH = "config_dump?mask=ecds_filters"
EVERYTHING_PATH = "config_dump?include_eds"
SERVER_INFO_PATH = "server_info"
"""Envoy's version, state and command line, and the bootstrap's node."""
EMPTY_DUMP = b'{"configs": []}'
"""What a dump reads as when a mask selects no section Envoy holds."""


def by_name(list_name: str, name: str | None = None, *, include_eds: bool = False) -> str:
    """`/config_dump` narrowed to one list of a section (`dynamic_route_configs`) and, given a
    name, to the resource of exactly that name."""
    path = f"config_dump?resource={list_name}"
    if include_eds:
        path += "&include_eds"
    if name is not None:
        path += "&name_regex=" + urllib.parse.quote("^" + re.escape(name) + "$", safe="")
    return path
