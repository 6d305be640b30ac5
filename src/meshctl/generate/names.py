"""Istio's resource names (translation-spec §1): tools and dashboards depend on them verbatim."""

from __future__ import annotations

__all__ = [
    "BLACKHOLE",
    "INBOUND_PASSTHROUGH",
    "PASSTHROUGH",
    "inbound_cluster",
    "istio_sni",
    "listener",
    "outbound_cluster",
    "parse_cluster",
    "virtual_host",
]

# Clusters every sidecar has, whatever the mesh holds.
BLACKHOLE = "BlackHoleCluster"
PASSTHROUGH = "PassthroughCluster"
INBOUND_PASSTHROUGH = "InboundPassthroughCluster"


def outbound_cluster(port: int, host: str, subset: str = "") -> str:
    """`outbound|9080|v1|reviews.default.svc.cluster.local`."""
    return f"outbound|{port}|{subset}|{host}"


def inbound_cluster(port: int) -> str:
    """`inbound|9080||`: one per workload port; also the inbound route configuration's name."""
    return f"inbound|{port}||"


def istio_sni(port: int, host: str, subset: str = "") -> str:
    """`outbound_.9080_.v1_.reviews.default.svc.cluster.local`: the default ISTIO_MUTUAL SNI."""
    return f"outbound_.{port}_.{subset}_.{host}"


def listener(address: str, port: int) -> str:
    return f"{address}_{port}"


def virtual_host(host: str, port: int) -> str:
    return f"{host}:{port}"


def parse_cluster(name: str) -> tuple[str, int, str, str] | None:
    """(direction, port, subset, host) of a subset-key cluster name, else None."""
    parts = name.split("|")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2], parts[3]
