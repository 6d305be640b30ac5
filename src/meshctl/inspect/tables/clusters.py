"""`proxy-config clusters`: istioctl's cluster summary (`configdump/cluster.go`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.inspect.configdump import ConfigDump
from meshctl.inspect.tables.enums import enum_string
from meshctl.inspect.tables.metadata import describe_management
from meshctl.inspect.tables.subsetkey import is_subset_key, parse_subset_key, sort_by_cluster_name
from meshctl.inspect.tabwriter import tabulate

__all__ = ["ClusterFilter", "TABLE_FIELDS", "clusters_table", "sorted_clusters"]


# The only cluster fields the table reads (a custom `cluster_type` leaves `type` unset: STATIC).
TABLE_FIELDS = ("name", "type", "metadata")


@dataclass(frozen=True)
class ClusterFilter:
    """istioctl's filters: substrings of the whole cluster name; the port must appear as `|port|`."""

    fqdn: str = ""
    port: int = 0
    subset: str = ""
    direction: str = ""

    def matches(self, name: str) -> bool:
        if self.fqdn and self.fqdn not in name:
            return False
        if self.direction and self.direction not in name:
            return False
        if self.subset and self.subset not in name:
            return False
        return not self.port or f"|{self.port}|" in name


def sorted_clusters(dump: ConfigDump, cluster_filter: ClusterFilter) -> list[Any]:
    """Active dynamic and static clusters matching the filter, in istioctl's order."""
    clusters = dump.clusters()
    sort_by_cluster_name(clusters, lambda cluster: cluster.name)
    return [cluster for cluster in clusters if cluster_filter.matches(cluster.name)]


def clusters_table(dump: ConfigDump, cluster_filter: ClusterFilter, prefixed: bool = False) -> str:
    """The SERVICE FQDN / PORT / SUBSET / DIRECTION / TYPE / DESTINATION RULE table.

    `prefixed` is the `proxy-config all` form: a NAME column of `cluster/<name>`, and names that
    are not subset keys also show that prefixed name as their FQDN, as istioctl prints them.
    A cluster with a custom `cluster_type` shows STATIC, the zero value, as in istioctl.
    """
    from envoy.config.cluster.v3.cluster_pb2 import Cluster

    header = "SERVICE FQDN\tPORT\tSUBSET\tDIRECTION\tTYPE\tDESTINATION RULE\n"
    lines = ["NAME\t" + header if prefixed else header]
    for cluster in sorted_clusters(dump, cluster_filter):
        kind = enum_string(Cluster.DiscoveryType, cluster.type)
        management = describe_management(cluster)
        name = f"cluster/{cluster.name}" if prefixed else cluster.name
        lead = f"{name}\t" if prefixed else ""
        if is_subset_key(cluster.name):
            key = parse_subset_key(cluster.name)
            subset = key.subset or "-"
            lines.append(f"{lead}{key.fqdn}\t{key.port}\t{subset}\t{key.direction}\t{kind}\t{management}\n")
        else:
            lines.append(f"{lead}{name}\t-\t-\t-\t{kind}\t{management}\n")
    return tabulate("".join(lines), padding=5)
