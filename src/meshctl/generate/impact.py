"""What a change of input can reach in a proxy's config: the knowledge `meshctl diff` needs to
translate only what may have changed, kept beside the generators that do the reading.

A VirtualService's HTTP routes are read only by route configurations (its TCP and TLS routes
become listener filter chains); route configurations are shared by every proxy with the same
view (`view_of`). So a change to HTTP routes alone changes, for all proxies of one view, the
same route configurations and nothing else: one translation per view tells it for all.

A DestinationRule is read by clusters (outbound, and the inbound cluster of a workload serving
its host), endpoints (subsets, locality) and routes (subsets, consistent hashing), never by
listeners, which name clusters and route configurations but not their policies. So a change to
DestinationRules alone is told by those: per view for the outbound clusters, endpoints and
routes, per proxy for its inbound clusters (`generate.proxy.inbound_clusters`). Connection
pools and outlier detection are read by clusters alone, but for a TCP pool's idle timeout and
maximum connection duration, which outbound tcp_proxy filters take: routes read a rule's
subsets and load balancer, endpoints its subsets and TLS mode. So a DestinationRule edited in
those alone (`clusters_only`) changes clusters and nothing else, and serve keys what else reads
rules by the rules as they see them (`rules_beyond_clusters`): a connection limit changed
rebuilds no proxy's listeners, no view's endpoints and no route table's hosts.

AuthorizationPolicies and RequestAuthentications are read only for the filters they add to
inbound chains (`generate.inbound_policy`): a change to them alone changes the inbound
listeners of the proxies whose filters change, and nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TypeVar

from meshctl.config.kinds.networking.destination_rule import (
    ConnectionPoolSettings,
    DestinationRule,
    OutlierDetection,
    PortTrafficPolicy,
    TCPSettings,
    TrafficPolicy,
)
from meshctl.config.kinds.networking.virtual_service import VirtualService
from meshctl.config.resource import Resource
from meshctl.generate.cache import GenerationCache
from meshctl.model.snapshot import MeshSnapshot

__all__ = ["POLICY_KINDS", "clusters_only", "policies_only", "routes_only", "rules_beyond_clusters", "rules_only"]

POLICY_KINDS = ("AuthorizationPolicy", "RequestAuthentication")


def routes_only(old: Resource | None, new: Resource | None) -> bool:
    """Whether replacing `old` by `new` (either may be missing) can change route configurations only."""
    for resource in (old, new):
        if resource is None:
            continue
        if not isinstance(resource.view, VirtualService) or resource.view.tcp or resource.view.tls:
            return False
    return old is not None or new is not None


def rules_only(old: Resource | None, new: Resource | None) -> bool:
    """Whether replacing `old` by `new` (either may be missing) is a DestinationRule change, which
    reaches clusters, endpoints and route configurations only, unless some rule sets what an
    outbound tcp_proxy reads (`tcproutes.sets_stream_policy`: the caller's to check)."""
    return (old is not None or new is not None) and all(
        resource is None or resource.kind == "DestinationRule" for resource in (old, new))


def clusters_only(old: Resource | None, new: Resource | None) -> bool:
    """Whether replacing `old` by `new` is a DestinationRule edited in its connection pools or
    outlier detection alone (at any level: the rule's, a port's, a subset's), which reach
    clusters only (module docstring)."""
    if old is None or new is None or not isinstance(old.view, DestinationRule) or not isinstance(new.view, DestinationRule):
        return False
    return _beyond_clusters(old.view) == _beyond_clusters(new.view)


_Policy = TypeVar("_Policy", TrafficPolicy, PortTrafficPolicy)
_POOL = ConnectionPoolSettings()
_OUTLIER = OutlierDetection()
_NO_POLICY = TrafficPolicy()


def rules_beyond_clusters(snapshot: MeshSnapshot, cache: GenerationCache) -> str:
    """A digest of the snapshot's DestinationRules as everything but clusters reads them (each
    as `_beyond_clusters` sees it, with the metadata its view is made of): in the cache keys of
    outbound listeners and endpoints instead of the rules' version, and kept with route tables
    (`routes._HostTable.rules`), so that a rule edited in its connection pools or outlier
    detection alone (`clusters_only`) leaves them as they were. Made once per version of the
    rules, each rule reduced once per revision, in the generation cache (a cold generation
    keys nothing)."""

    def digest() -> str:
        made = hashlib.blake2b(digest_size=16)
        for view in snapshot.destination_rules:
            for resource in view.resources:
                made.update(cache.get(("beyond-clusters", resource.revision), lambda: _seen_beyond(resource)))
        return made.hexdigest()

    return cache.get(("rules-beyond-clusters", snapshot.versions_of("DestinationRule")), digest)


def _seen_beyond(resource: Resource) -> bytes:
    """What of one DestinationRule resource reaches more than clusters, as bytes to digest."""
    assert isinstance(resource.view, DestinationRule)
    seen = (resource.namespace, resource.name, resource.created, resource.generation, sorted(resource.labels.items()),
            sorted(resource.annotations.items()), _beyond_clusters(resource.view))
    return repr(seen).encode() + b"\0"


def _beyond_clusters(rule: DestinationRule) -> DestinationRule:
    """The rule as what reads more than clusters sees it: each connection pool reduced to the
    TCP idle timeout and maximum connection duration (outbound tcp_proxy filters read them) and
    each outlier detection to whether it is there (merging same-host rules keeps the first
    policy there is, so a policy's presence matters beyond clusters even where its content does
    not)."""
    policy = _reduced_policy(rule.traffic_policy) if rule.traffic_policy is not None else None
    subsets = tuple(dataclasses.replace(subset, traffic_policy=_reduced_subset_policy(subset.traffic_policy))
                    if subset.traffic_policy is not None else subset for subset in rule.subsets)
    return dataclasses.replace(rule, traffic_policy=policy, subsets=subsets)


def _reduced_subset_policy(policy: TrafficPolicy) -> TrafficPolicy | None:
    """A subset's policy overlays the rule's field by field (`policy.for_subset`), and nothing
    but clusters reads a subset's connection pool or outlier detection (tcp_proxy reads the
    rule's own pool alone): one that sets nothing else is, beyond clusters, no policy at all."""
    if dataclasses.replace(policy, connection_pool=None, outlier_detection=None) == _NO_POLICY:
        return None
    return _reduced_policy(policy)


def _reduced_policy(policy: TrafficPolicy) -> TrafficPolicy:
    return dataclasses.replace(_reduced(policy), port_level_settings=tuple(map(_reduced, policy.port_level_settings)))


def _reduced(policy: _Policy) -> _Policy:
    pool = policy.connection_pool
    return dataclasses.replace(policy, connection_pool=_streams_of(pool) if pool is not None else None,
                               outlier_detection=_OUTLIER if policy.outlier_detection is not None else None)


def _streams_of(pool: ConnectionPoolSettings) -> ConnectionPoolSettings:
    """A connection pool as outbound listeners read it (`tcproutes.stream_policy`)."""
    tcp = pool.tcp
    if tcp is None:
        return _POOL
    return ConnectionPoolSettings(tcp=TCPSettings(idle_timeout=tcp.idle_timeout,
                                                  max_connection_duration=tcp.max_connection_duration))


def policies_only(old: Resource | None, new: Resource | None) -> bool:
    """Whether replacing `old` by `new` (either may be missing) is an AuthorizationPolicy or
    RequestAuthentication change, which reaches inbound listeners only."""
    return (old is not None or new is not None) and all(
        resource is None or resource.kind in POLICY_KINDS for resource in (old, new))
