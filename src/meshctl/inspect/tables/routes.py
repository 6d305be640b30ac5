"""`proxy-config routes`: istioctl's route summary (`configdump/route.go`), padding 5.

Verbose (the default): one row per route of every virtual host, except routes to
PassthroughCluster; a virtual host without routes prints `/*` and `404`. With `wide`, meshctl
adds where each route sends traffic (clusters with weights) and the config that owns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.inspect.configdump import ConfigDump
from meshctl.inspect.gosort import sort_slice
from meshctl.inspect.gostd import atoi
from meshctl.inspect.tables.matches import describe_conditions, describe_match
from meshctl.inspect.tables.metadata import describe_management, describe_owner
from meshctl.inspect.tabwriter import tabulate

__all__ = ["RouteFilter", "describe_destination", "describe_domains", "routes_table", "sorted_route_configs"]

_MAX_DOMAINS = 2


@dataclass(frozen=True)
class RouteFilter:
    """`name` selects one route configuration by its exact name."""

    name: str = ""
    verbose: bool = True

    def matches(self, route_config: Any) -> bool:
        return not self.name or self.name == route_config.name


def sorted_route_configs(dump: ConfigDump) -> list[Any]:
    """Dynamic then static route configurations, in istioctl's order.

    Names compare as integers when both parse and are otherwise "not less", so the order of
    mixed names is whatever Go's sort makes of that; `sort_slice` reproduces it.
    """
    route_configs = dump.route_configs()
    sort_slice(route_configs, _route_config_less)
    return route_configs


def routes_table(dump: ConfigDump, route_filter: RouteFilter, prefixed: bool = False, wide: bool = False) -> str:
    """NAME / VHOST NAME / DOMAINS / MATCH / VIRTUAL SERVICE, or NAME / VIRTUAL HOSTS.

    `prefixed` is the `proxy-config all` form (`route/<name>`); `wide` (verbose only) shows the
    whole match (headers, query parameters) and appends DESTINATION and OWNER columns.
    """
    route_configs = [config for config in sorted_route_configs(dump) if route_filter.matches(config)]
    if not route_filter.verbose:
        lines = ["NAME\tVIRTUAL HOSTS\n"]
        lines.extend(f"{_name(config, prefixed)}\t{len(config.virtual_hosts)}\n" for config in route_configs)
        return tabulate("".join(lines), padding=5)
    header = "NAME\tVHOST NAME\tDOMAINS\tMATCH\tVIRTUAL SERVICE"
    lines = [header + ("\tDESTINATION\tOWNER\n" if wide else "\n")]
    for config in route_configs:
        name = _name(config, prefixed)
        for host in config.virtual_hosts:
            domains = describe_domains(list(host.domains))
            for route in host.routes:
                if _is_passthrough(route):
                    continue
                match = describe_conditions(route.match) if wide else describe_match(route.match)
                cells = [name, host.name, domains, match, describe_management(route)]
                if wide:
                    cells += [describe_destination(route), describe_owner(route)]
                lines.append("\t".join(cells) + "\n")
            if not host.routes:
                cells = [name, host.name, domains, "/*", "404"]
                lines.append("\t".join([*cells, "-", "-"] if wide else cells) + "\n")
    return tabulate("".join(lines), padding=5)


def describe_domains(domains: list[str]) -> str:
    """One domain as is; otherwise at most two, without `host:port` forms (a bracketed IPv6
    address stays only when it has more than two colons, as in istioctl) and without
    `.svc[.cluster.local]` forms whose short name is also listed."""
    if len(domains) <= 1:
        return domains[0] if domains else ""
    without_port = [
        domain for domain in domains if ":" not in domain or (domain.count(":") > 2 and domain.endswith("]"))
    ]
    shown = _drop_expanded(without_port)
    if len(shown) > _MAX_DOMAINS:
        return ", ".join(shown[:_MAX_DOMAINS]) + f" + {len(shown) - _MAX_DOMAINS} more..."
    return ", ".join(shown)


def describe_destination(route: Any) -> str:
    """Where a route sends requests: a cluster, weighted clusters as `name (weight)`, or the
    kind of action for routes that do not forward (meshctl's wide view)."""
    action = route.WhichOneof("action")
    if action == "redirect":
        return "redirect"
    if action == "direct_response":
        return f"direct response {route.direct_response.status}"
    if action != "route":
        return "-" if action is None else "no forwarding"
    specifier = route.route.WhichOneof("cluster_specifier")
    if specifier == "cluster":
        return route.route.cluster
    if specifier == "weighted_clusters":
        return ", ".join(
            f"{cluster.name} ({cluster.weight.value})" for cluster in route.route.weighted_clusters.clusters
        )
    if specifier == "cluster_header":
        return f"cluster from header {route.route.cluster_header}"
    return "-" if specifier is None else "cluster specifier plugin"


def _name(route_config: Any, prefixed: bool) -> str:
    return f"route/{route_config.name}" if prefixed else route_config.name


def _drop_expanded(domains: list[str]) -> list[str]:
    unique = set(domains)
    expanded = set()
    for domain in domains:
        for suffix in (".svc.cluster.local", ".svc"):
            short = domain.removesuffix(suffix)
            if short != domain and short in unique:
                expanded.add(domain)
    return [domain for domain in domains if domain not in expanded]


def _is_passthrough(route: Any) -> bool:
    return (
        route.WhichOneof("action") == "route"
        and route.route.WhichOneof("cluster_specifier") == "cluster"
        and route.route.cluster == "PassthroughCluster"
    )


def _route_config_less(left: Any, right: Any) -> bool:
    left_number, left_ok = atoi(left.name)
    if not left_ok:
        return False
    right_number, right_ok = atoi(right.name)
    return right_ok and left_number < right_number
