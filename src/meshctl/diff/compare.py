"""What a change of input does to every proxy: both meshes translated, proxy by proxy, resource
by resource, field by field.

Work is done only where the change can reach. Unchanged input ends the comparison before any
translation. Proxies that cannot see any changed VirtualService or DestinationRule (by their
Sidecar scope and exportTo) are not translated at all. A change that can only reach route
configurations (`generate.impact.routes_only`) is translated once per view (`view_of`): every
proxy of a view holds the very same route configurations. A DestinationRule change
(`generate.impact.rules_only`) adds the view's outbound clusters and endpoints, never a
listener, unless some rule sets what an outbound tcp_proxy reads (then proxies are translated
whole); one edited in connection pools or outlier detection alone
(`generate.impact.clusters_only`) reaches no endpoint or route, and only clusters are built. A
proxy's inbound clusters are built only where the change gives them other inputs
(`generate.proxy.inbound_key`): elsewhere they are equal on both sides by construction. An
AuthorizationPolicy or RequestAuthentication change (`generate.impact.policies_only`) is
translated only for the proxies whose policy filters it changes, and only their inbound
listeners. Otherwise each proxy is translated whole on both sides. One generation cache serves
every translation, so what the change does not touch is reused rather than rebuilt, and equal
messages are recognised by identity before bytes, by bytes before fields. Field paths come
from `status.semantic.field_changes`, the diff `proxy-status --semantic` prints.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from meshctl.config.resource import Resource
from meshctl.resources import CLUSTER, LISTENER
from meshctl.status.semantic import FieldChange, field_changes

if TYPE_CHECKING:
    from meshctl.config.loader import LoadResult
    from meshctl.generate.cache import GenerationCache
    from meshctl.generate.inbound_policy import InboundPolicy
    from meshctl.generate.routebytes import AssembledRoutes
    from meshctl.generate.proxy import ProxyConfig
    from meshctl.model.meshconfig import MeshConfig
    from meshctl.model.proxy import Proxy
    from meshctl.model.scope import SidecarScope
    from meshctl.model.snapshot import MeshSnapshot
    from meshctl.status.envoyjson import EnvoyJson

__all__ = ["EnvoyChange", "InputChange", "MeshDiff", "ProxyGroup", "diff_meshes"]

T = TypeVar("T")
ROUTE_KIND = "RouteConfiguration"
ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
# Envoy resource kinds, in push order: how a ProxyConfig holds them, how each is named, and the
# type URL of its segments (shared outbound lists apart from the proxy's own inbound ones).
_KINDS = (("Cluster", "clusters", "name", CLUSTER), ("ClusterLoadAssignment", "endpoints", "cluster_name", ""),
          ("Listener", "listeners", "name", LISTENER), ("RouteConfiguration", "assembled", "name", ""))
_ORDER = {kind: index for index, (kind, *_) in enumerate(_KINDS)}


@dataclass(frozen=True, slots=True)
class InputChange:
    """A resource of the input that was added, removed or changed, and where it is."""

    kind: str
    namespace: str
    name: str
    change: str
    location: str

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class EnvoyChange:
    """One Envoy resource of a proxy added, removed, or changed in these fields."""

    kind: str
    name: str
    change: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class ProxyGroup:
    """Proxies whose config changes the same way; `status` is `changed`, or `added` and
    `removed` for a proxy that exists on one side only."""

    proxies: tuple[str, ...]
    status: str
    changes: tuple[EnvoyChange, ...]


@dataclass(frozen=True, slots=True)
class MeshDiff:
    inputs: tuple[InputChange, ...]
    groups: tuple[ProxyGroup, ...]
    proxies: int
    translated: int

    @property
    def changed(self) -> bool:
        """Whether any proxy's config changes (input changes no proxy sees change nothing)."""
        return bool(self.groups)


def input_changes(old: Sequence[Resource], new: Sequence[Resource]) -> list[InputChange]:
    before = {r.key: r for r in old}
    after = {r.key: r for r in new}
    changes = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was is not None and now is not None and was.revision == now.revision:
            continue
        change = ADDED if was is None else REMOVED if now is None else CHANGED
        where = (now or was).where()  # type: ignore[union-attr]
        changes.append(InputChange(key[0], key[1], key[2], change, where))
    return changes


def diff_meshes(old: LoadResult, new: LoadResult, mesh: MeshConfig | None = None) -> MeshDiff:
    """Every proxy's Envoy resources before and after (module docstring), both sides under one
    mesh config."""
    from meshctl.generate.cache import GenerationCache
    from meshctl.model.snapshot import build_snapshot

    inputs = input_changes(old.resources, new.resources)
    if not inputs:
        return MeshDiff((), (), 0, 0)
    before = build_snapshot(old.resources, mesh)
    after = build_snapshot(new.resources, mesh, previous=before)
    old_proxies, new_proxies = _proxies(before), _proxies(after)
    changed = {(c.kind, c.namespace, c.name) for c in inputs}
    resources_before = {r.key: r for r in old.resources if r.key in changed}
    resources_after = {r.key: r for r in new.resources if r.key in changed}
    pairs = [(resources_before.get(key), resources_after.get(key)) for key in changed]
    work = _Work(before, after, GenerationCache(), pairs)
    both = sorted(old_proxies.keys() & new_proxies.keys())
    results = work.changes([(old_proxies[pid], new_proxies[pid]) for pid in both])
    groups = _group({pid: changes for pid, changes in zip(both, results, strict=True) if changes})
    groups += [ProxyGroup((pid,), REMOVED, work.whole(before, old_proxies[pid], REMOVED))
               for pid in sorted(old_proxies.keys() - new_proxies.keys())]
    groups += [ProxyGroup((pid,), ADDED, work.whole(after, new_proxies[pid], ADDED))
               for pid in sorted(new_proxies.keys() - old_proxies.keys())]
    return MeshDiff(tuple(inputs), tuple(groups), len(old_proxies.keys() | new_proxies.keys()), work.translated)


def _proxies(snapshot: MeshSnapshot) -> dict[str, Proxy]:
    """Every workload with a sidecar, as translate would name and render its proxy."""
    return {w.proxy_id: snapshot.proxy_of(w) for w in snapshot.registry.workloads if w.injected}


def _group(results: Mapping[str, tuple[EnvoyChange, ...]]) -> list[ProxyGroup]:
    """Proxies whose changes are equal, field values included, as one group."""
    by_changes: dict[str, tuple[tuple[EnvoyChange, ...], list[str]]] = {}
    for proxy_id, changes in results.items():
        signature = json.dumps([(c.kind, c.name, c.change, [(f.path, repr(f.before), repr(f.after)) for f in c.fields])
                                for c in changes])
        by_changes.setdefault(signature, (changes, []))[1].append(proxy_id)
    groups = [ProxyGroup(tuple(ids), CHANGED, changes) for changes, ids in by_changes.values()]
    return sorted(groups, key=lambda g: (-len(g.proxies), g.proxies))


class _Work:
    """Translations of both sides, done once per what can differ."""

    def __init__(self, before: MeshSnapshot, after: MeshSnapshot, cache: GenerationCache,
                 pairs: Sequence[tuple[Resource | None, Resource | None]]) -> None:
        from meshctl.generate.impact import clusters_only, policies_only, routes_only, rules_only

        self.before, self.after, self.cache = before, after, cache
        self.translated = 0
        kinds = {(r or s).kind for r, s in pairs}  # type: ignore[union-attr]
        self._only_routing = kinds <= {"VirtualService", "DestinationRule"}
        self._routes_only = all(routes_only(r, s) for r, s in pairs)
        self._rules_only = all(rules_only(r, s) for r, s in pairs) and not _streams_configured(before, after)
        self._clusters_only = all(clusters_only(r, s) for r, s in pairs)
        self._policies_only = all(policies_only(r, s) for r, s in pairs)
        self._routing = [r for pair in pairs for r in pair if r is not None and r.kind in ("VirtualService", "DestinationRule")]
        self._seen: dict[int, tuple[SidecarScope, bool]] = {}
        self._hosts: dict[str, bool] = {}
        self._lists: dict[tuple[str, int, int], tuple[list[Any], list[Any], list[EnvoyChange]]] = {}

    def changes(self, pairs: Sequence[tuple[Proxy, Proxy]]) -> list[tuple[EnvoyChange, ...]]:
        """The changes of each proxy (before, after). Gateways are translated whole on both
        sides: the shortcuts below follow a sidecar's structure (its inbound side, its views)."""
        routers = {i for i, (old, new) in enumerate(pairs) if old.is_router or new.is_router}
        sidecars = iter(self._sidecar_changes([pair for i, pair in enumerate(pairs) if i not in routers]))
        return [self._compare(self._generate(self.before, old), self._generate(self.after, new)) if i in routers
                else next(sidecars) for i, (old, new) in enumerate(pairs)]

    def _sidecar_changes(self, pairs: Sequence[tuple[Proxy, Proxy]]) -> list[tuple[EnvoyChange, ...]]:
        """Every old translation is done before any new one: the generation cache keeps the
        pieces of the last two snapshots it was used for, so the new side reuses what the old
        side built instead of each proxy evicting it."""
        if not pairs:
            return []
        if self._policies_only:
            return self._by_policy(pairs)
        reached = [not self._only_routing or self._sees_any(old, new) for old, new in pairs]
        if self._routes_only or self._rules_only:
            return self._by_view(pairs, reached)
        olds = [self._generate(self.before, old) if hit else None for (old, _), hit in zip(pairs, reached, strict=True)]
        news = [self._generate(self.after, new) if hit else None for (_, new), hit in zip(pairs, reached, strict=True)]
        return [self._compare(a, b) if a is not None and b is not None else () for a, b in zip(olds, news, strict=True)]

    def _by_view(self, pairs: Sequence[tuple[Proxy, Proxy]], reached: Sequence[bool]) -> list[tuple[EnvoyChange, ...]]:
        """A change that reaches only route configurations, or only those, clusters and
        endpoints, or only clusters (`generate.impact`): what a view shares translated once per
        view, a proxy of each view standing for it (its route configurations; the outbound
        clusters and endpoints of the services a changed DestinationRule can apply to,
        `host_clusters`, the others' reading no changed input); of a proxy's own side, its
        inbound clusters, only where a DestinationRule change gives them other inputs
        (`inbound_key`), and then on both sides."""
        from meshctl.generate.proxy import host_clusters, inbound_clusters, inbound_key, route_configurations, view_of

        views = [(view_of(self.before, old), view_of(self.after, new)) if hit else None
                 for (old, new), hit in zip(pairs, reached, strict=True)]
        first: dict[tuple[Any, Any], tuple[Proxy, Proxy]] = {}
        for view, pair in zip(views, pairs, strict=True):
            if view is not None:
                first.setdefault(view, pair)
        routes, clusters = not self._clusters_only, not self._routes_only
        sides = []
        for side, snapshot in enumerate((self.before, self.after)):  # the old side whole first (`changes`)
            shared = {view: (route_configurations(snapshot, pair[side], self.cache) if routes else [],
                             *(host_clusters(snapshot, pair[side], self._rule_reaches, self.cache, endpoints=routes)
                               if clusters else ([], [])))
                      for view, pair in first.items()}
            keys = [inbound_key(snapshot, pair[side], self.cache) if view is not None and clusters else None
                    for pair, view in zip(pairs, views, strict=True)]
            sides.append((shared, keys))
        (olds, old_keys), (news, new_keys) = sides
        own = [i for i, (a, b) in enumerate(zip(old_keys, new_keys, strict=True)) if a != b]
        inbound = [[inbound_clusters(snapshot, pairs[i][side], self.cache) for i in own]
                   for side, snapshot in enumerate((self.before, self.after))]
        self.translated += 2 * (len(first) + len(own))
        by_view = {view: [*self._compare_lists("Cluster", "name", olds[view][1], news[view][1]),
                          *self._compare_lists("ClusterLoadAssignment", "cluster_name", olds[view][2], news[view][2]),
                          *compare_routes(olds[view][0], news[view][0])] for view in first}
        by_proxy = {i: compare_resources("Cluster", a, b, "name") for i, a, b in zip(own, *inbound, strict=True)}
        return [tuple(sorted([*by_view[view], *by_proxy.get(i, ())], key=lambda c: (_ORDER[c.kind], c.name)))
                if view is not None else () for i, view in enumerate(views)]

    def _by_policy(self, pairs: Sequence[tuple[Proxy, Proxy]]) -> list[tuple[EnvoyChange, ...]]:
        """An AuthorizationPolicy or RequestAuthentication change: the inbound listeners of the
        proxies whose policy filters differ, translated on both sides; no other proxy, and
        nothing else of these, is translated."""
        from meshctl.generate.proxy import inbound_listeners, policy_filters

        olds = [_filter_bytes(policy_filters(self.before, old, self.cache)) for old, _ in pairs]
        news = [_filter_bytes(policy_filters(self.after, new, self.cache)) for _, new in pairs]
        reached = [a != b for a, b in zip(olds, news, strict=True)]
        before = [inbound_listeners(self.before, old, self.cache) if hit else None
                  for (old, _), hit in zip(pairs, reached, strict=True)]
        after = [inbound_listeners(self.after, new, self.cache) if hit else None
                 for (_, new), hit in zip(pairs, reached, strict=True)]
        self.translated += 2 * sum(reached)
        return [tuple(compare_resources("Listener", a, b, "name")) if a is not None and b is not None else ()
                for a, b in zip(before, after, strict=True)]

    def _rule_reaches(self, host: str) -> bool:
        """Whether a changed DestinationRule can apply to a service of this host, before or after
        (a rule applies to the hosts its own host matches)."""
        found = self._hosts.get(host)
        if found is None:
            found = self._hosts[host] = self._reaches(self.before, {host}, set())
        return found

    def _sees_any(self, old: Proxy, new: Proxy) -> bool:
        """Whether a changed VirtualService or DestinationRule can reach the proxy, before or
        after: a VirtualService through its Sidecar scope, a DestinationRule by host, also as
        the backend of that host (its connection pool shapes the inbound cluster too)."""
        for snapshot, proxy in ((self.before, old), (self.after, new)):
            scope = snapshot.scope_for(proxy)
            found = self._seen.get(id(scope))
            if found is None or found[0] is not scope:
                hosts = {service.hostname for service in scope.services}
                hosts |= {h for egress in scope.egress for vs in egress.virtual_services for h in vs.http_destinations}
                visible = {vs.resource.key for egress in scope.egress for vs in egress.virtual_services}
                found = self._seen[id(scope)] = (scope, self._reaches(snapshot, hosts, visible))
            if found[1]:
                return True
            if proxy.workload is not None:
                backed = {service.hostname for service in snapshot.registry.services_of(proxy.workload)}
                if self._reaches(snapshot, backed, set()):
                    return True
        return False

    def _reaches(self, snapshot: MeshSnapshot, hosts: set[str], visible: set[tuple[str, str, str]]) -> bool:
        """Whether a changed VirtualService is among `visible`, or a changed DestinationRule's
        host among `hosts`."""
        from meshctl.hostnames import intersects

        for resource in self._routing:
            if resource.kind == "VirtualService" and (resource.key in visible or _delegate(resource)):
                return True
            if resource.kind == "DestinationRule":
                rule_host = _rule_host(resource)
                if any(intersects(rule_host, host) for host in hosts):
                    return True
        return False

    def _generate(self, snapshot: MeshSnapshot, proxy: Proxy) -> ProxyConfig:
        from meshctl.generate.proxy import generate

        self.translated += 1
        return generate(snapshot, proxy, self.cache)

    def _compare(self, before: ProxyConfig, after: ProxyConfig) -> tuple[EnvoyChange, ...]:
        """Every kind, compared list by list: the outbound lists proxies of one view share are
        compared once for all of them, only the proxy's own inbound lists each time."""
        changes: list[EnvoyChange] = []
        for kind, attribute, key, segmented in _KINDS:
            old_lists = before.segments.get(segmented) or (getattr(before, attribute),)
            new_lists = after.segments.get(segmented) or (getattr(after, attribute),)
            if len(old_lists) != len(new_lists):
                old_lists, new_lists = (getattr(before, attribute),), (getattr(after, attribute),)
            for old_list, new_list in zip(old_lists, new_lists, strict=True):
                changes.extend(self._compare_lists(kind, key, old_list, new_list))
        return tuple(sorted(changes, key=lambda c: (_ORDER[c.kind], c.name)))

    def _compare_lists(self, kind: str, key: str, before: list[Any], after: list[Any]) -> list[EnvoyChange]:
        memo = (kind, id(before), id(after))
        found = self._lists.get(memo)
        if found is None or found[0] is not before or found[1] is not after:
            changes = (compare_routes(before, after) if kind == "RouteConfiguration"
                       else compare_resources(kind, before, after, key))
            found = self._lists[memo] = (before, after, changes)
        return found[2]

    def whole(self, snapshot: MeshSnapshot, proxy: Proxy, change: str) -> tuple[EnvoyChange, ...]:
        """Every resource of a proxy that exists on one side only."""
        config = self._generate(snapshot, proxy)
        return tuple(EnvoyChange(kind, str(getattr(item, key)), change)
                     for kind, attribute, key, _ in _KINDS for item in getattr(config, attribute))


def _streams_configured(*snapshots: MeshSnapshot) -> bool:
    """Whether some DestinationRule sets what outbound tcp_proxy filters read (its TCP idle
    timeout, connection duration, source-IP hashing): then a rule's change, or which rule
    applies, can reach listeners, and proxies are translated whole."""
    from meshctl.generate.tcproutes import sets_stream_policy

    return any(sets_stream_policy(rule) for snapshot in snapshots for rule in snapshot.destination_rules)


def _filter_bytes(policy: InboundPolicy) -> tuple[bytes, ...]:
    """A proxy's policy filters as bytes, HTTP and TCP apart: equal exactly when they are."""
    return (*(f.SerializeToString(deterministic=True) for f in policy.http), b"|",
            *(f.SerializeToString(deterministic=True) for f in policy.tcp))


def _delegate(resource: Resource) -> bool:
    """A VirtualService without hosts: a delegate, reached through the root that names it."""
    from meshctl.config.kinds.networking.virtual_service import VirtualService

    return isinstance(resource.view, VirtualService) and not resource.view.hosts


def _rule_host(resource: Resource) -> str:
    from meshctl.config.kinds.networking.destination_rule import DestinationRule
    from meshctl.hostnames import fqdn

    host = resource.view.host if isinstance(resource.view, DestinationRule) else "*"
    return fqdn(host, resource.namespace)


def compare_resources(kind: str, before: Sequence[Any], after: Sequence[Any], key: str) -> list[EnvoyChange]:
    """Resources of one kind by name: added, removed, and changed with their field paths."""

    def differing(a: Any, b: Any) -> tuple[Any, Any] | None:
        if a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True):
            return None
        return _without_equal_named_items(a, b)

    return _by_name(kind, before, after, lambda item: str(getattr(item, key)), differing)


def compare_routes(before: Sequence[AssembledRoutes], after: Sequence[AssembledRoutes]) -> list[EnvoyChange]:
    """Route configurations by name, as `compare_resources` compares them, but virtual host by
    virtual host on their serialized bytes: of a thousand-host configuration changed in one
    host, only the hosts that differ are parsed for their field paths."""

    def differing(a: AssembledRoutes, b: AssembledRoutes) -> tuple[Any, Any] | None:
        if a.packed().value == b.packed().value:
            return None
        names_a, names_b = [h.name for h in a.hosts], [h.name for h in b.hosts]
        if not all(names_a) or not all(names_b) or len(set(names_a)) < len(names_a) or len(set(names_b)) < len(names_b):
            return _without_equal_named_items(a.message, b.message)  # as compare_resources does
        fields = {host.name: host.field for host in b.hosts}
        same = {host.name for host in a.hosts if fields.get(host.name) == host.field}
        return a.only([h for h in a.hosts if h.name not in same]), b.only([h for h in b.hosts if h.name not in same])

    return _by_name(ROUTE_KIND, before, after, lambda item: item.name, differing)


def _by_name(kind: str, before: Sequence[T], after: Sequence[T], name_of: Callable[[T], str],
             differing: Callable[[T, T], tuple[Any, Any] | None]) -> list[EnvoyChange]:
    """Added, removed and changed resources by name (the first of a name is the one sent);
    `differing` gives the messages to take field paths from, or None for equal resources."""
    if before is after:
        return []
    old: dict[str, T] = {}
    new: dict[str, T] = {}
    for items, by_name in ((before, old), (after, new)):
        for item in items:
            by_name.setdefault(name_of(item), item)
    changes = [EnvoyChange(kind, name, REMOVED) for name in sorted(old.keys() - new.keys())]
    changes += [EnvoyChange(kind, name, ADDED) for name in sorted(new.keys() - old.keys())]
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name], new[name]
        messages = None if a is b else differing(a, b)
        if messages is not None:
            changes.append(EnvoyChange(kind, name, CHANGED, tuple(field_changes(_json(messages[0]), _json(messages[1])))))
    order = {REMOVED: 0, ADDED: 1, CHANGED: 2}
    return sorted(changes, key=lambda c: (c.name, order[c.change]))


def _without_equal_named_items(a: Any, b: Any) -> tuple[Any, Any]:
    """Copies of two messages without the items of their named lists (virtual hosts) that are
    equal on both sides: they cannot show in field paths, which name such items by name, and a
    thousand-host route configuration converts to JSON a thousand times faster without them.
    Lists whose order Envoy acts on are left whole: their paths count positions."""
    from meshctl.status.semantic import ORDERED_LISTS

    trimmed_a = trimmed_b = None
    for field in a.DESCRIPTOR.fields:
        if (not field.is_repeated or field.message_type is None or field.name in ORDERED_LISTS
                or "name" not in field.message_type.fields_by_name):
            continue
        items_a, items_b = getattr(a, field.name), getattr(b, field.name)
        names_a, names_b = [item.name for item in items_a], [item.name for item in items_b]
        if not all(names_a) or not all(names_b) or len(set(names_a)) < len(names_a) or len(set(names_b)) < len(names_b):
            continue
        by_name = {item.name: item.SerializeToString(deterministic=True) for item in items_b}
        same = {item.name for item in items_a if by_name.get(item.name) == item.SerializeToString(deterministic=True)}
        if not same:
            continue
        if trimmed_a is None:
            trimmed_a, trimmed_b = type(a)(), type(b)()
            trimmed_a.CopyFrom(a)
            trimmed_b.CopyFrom(b)
        for trimmed, items in ((trimmed_a, items_a), (trimmed_b, items_b)):
            getattr(trimmed, field.name).clear()
            getattr(trimmed, field.name).extend(item for item in items if item.name not in same)
    return (trimmed_a, trimmed_b) if trimmed_a is not None else (a, b)


def _json(message: Any) -> Any:
    """A message as the JSON data Envoy prints (what field paths are written in)."""
    return _converter().data(message)


@functools.cache
def _converter() -> EnvoyJson:
    from google.protobuf import descriptor_pool

    from meshctl.status.envoyjson import EnvoyJson

    return EnvoyJson(descriptor_pool.Default())
