"""What `meshctl diff` must report, found the slow way: both sides translated cold and whole,
every proxy, and compared resource by resource with `compare_resources` on the messages (no
views, no generation cache, no shortcut of `generate.impact`, no host-by-host route bytes).
Tests hold diff's fast paths to it."""

from __future__ import annotations

from collections.abc import Sequence

from meshctl.config.resource import Resource
from meshctl.diff.compare import ADDED, CHANGED, REMOVED, EnvoyChange, MeshDiff, compare_resources
from meshctl.generate.proxy import ProxyConfig, generate
from meshctl.model.snapshot import build_snapshot

KINDS = (("Cluster", "clusters", "name"), ("ClusterLoadAssignment", "endpoints", "cluster_name"),
         ("Listener", "listeners", "name"), ("RouteConfiguration", "routes", "name"))

Outcome = dict[str, tuple[str, tuple[EnvoyChange, ...]]]
"""Proxy id → (changed, added or removed; its Envoy resource changes)."""


def whole_diff(old: Sequence[Resource], new: Sequence[Resource]) -> Outcome:
    """Every proxy whose config differs between the two sides, with its changes."""
    before, after = build_snapshot(old), build_snapshot(new)
    configs = []
    for snapshot in (before, after):
        configs.append({w.proxy_id: generate(snapshot, snapshot.proxy(w.proxy_id))
                        for w in snapshot.registry.workloads if w.injected})
    olds, news = configs
    out: Outcome = {}
    for proxy_id in olds.keys() & news.keys():
        a, b = olds[proxy_id], news[proxy_id]
        changes = tuple(change for kind, attribute, key in KINDS
                        for change in compare_resources(kind, getattr(a, attribute), getattr(b, attribute), key))
        if changes:
            out[proxy_id] = (CHANGED, changes)
    for proxy_id in olds.keys() - news.keys():
        out[proxy_id] = (REMOVED, _whole(olds[proxy_id], REMOVED))
    for proxy_id in news.keys() - olds.keys():
        out[proxy_id] = (ADDED, _whole(news[proxy_id], ADDED))
    return out


def reported(diff: MeshDiff) -> Outcome:
    """The diff's groups as an Outcome, proxy by proxy."""
    return {proxy: (group.status, group.changes) for group in diff.groups for proxy in group.proxies}


def _whole(config: ProxyConfig, change: str) -> tuple[EnvoyChange, ...]:
    return tuple(EnvoyChange(kind, str(getattr(item, key)), change)
                 for kind, attribute, key in KINDS for item in getattr(config, attribute))
