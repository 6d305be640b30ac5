"""VirtualServices edited in place: the change that needs no pass over the mesh.

Most routing edits change a VirtualService's rules and nothing else: its hosts, gateways,
exportTo and precedence stay, and so does everything a Sidecar's imports or a route
configuration's layout (which virtual hosts exist, which domains each claims) is made of. So
does a DestinationRule edit, which reaches only the routes that lead to its host. A
snapshot built from its predecessor by such edits alone records them as RoutingChanges; what
the predecessor computed per egress listener and per route configuration then stays valid with
the new VirtualServices put in place of the old, so the cost of the edit is the cost of what it
reaches (its own routes), not a pass over every service and VirtualService of the mesh.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from meshctl.blocks import Blocks
from meshctl.model.istio import VirtualServiceView, order_key
from meshctl.model.scope import Imports, import_order, matches_source_labels, streams_of

__all__ = ["RoutingChanges", "in_place"]

ResourceKey = tuple[str, str, str]
_FEW = 8
"""Up to how many replaced views are looked up one by one in an imported sequence (by
bisection: it is in `import_order`) rather than by one pass over it."""


@dataclass(frozen=True, eq=False)
class RoutingChanges:
    """VirtualServices replaced in place (key → old view, new view) and, if `rules`,
    DestinationRules changed, relative to the snapshot of `previous_version`; no other kind
    changed but endpoints, which no route reads."""

    previous_version: str
    replaced: Mapping[ResourceKey, tuple[VirtualServiceView, VirtualServiceView]]
    rules: bool = False

    def carried(self, imports: Imports, namespace: str) -> Imports:
        """An egress listener's imports (services, VirtualServices, and what is read from them:
        see scope.build_scope) of the previous snapshot, for a proxy of `namespace`, with each
        replaced VirtualService in its place: an in-place edit changes none of what decided
        the import, the order or the flags; only the TCP and TLS routes, when the edit was of
        those. A few replaced share all but their blocks with the imports before."""
        services, virtual_services, by_labels, headless, streams = imports
        if len(self.replaced) > _FEW:  # every object read again (diff's other side): one pass
            carried = Blocks(self._by_old.get(id(vs), vs) for vs in virtual_services)
        else:
            order = import_order(namespace)
            places = {}
            for old, new in self.replaced.values():
                place = virtual_services.position(old, order)  # identity: views compare as objects
                if place is not None:
                    places[place] = new
            carried = virtual_services.replaced(places)
        if any(old.spec.tcp or old.spec.tls or new.spec.tcp or new.spec.tls for old, new in self.edited):
            streams = streams_of(carried)
        return services, carried, by_labels, headless, streams

    @functools.cached_property
    def _by_old(self) -> dict[int, VirtualServiceView]:
        return {id(old): new for old, new in self.replaced.values()}

    @functools.cached_property
    def edited(self) -> list[tuple[VirtualServiceView, VirtualServiceView]]:
        """The replaced views whose content changed (the others were only read again)."""
        return [(old, new) for old, new in self.replaced.values() if old.resource.revision != new.resource.revision]


def in_place(old: VirtualServiceView, new: VirtualServiceView) -> bool:
    """Whether `new` replaces `old` changing only its rules (see the module docstring)."""
    return (old.hosts == new.hosts and old.gateways == new.gateways and old.export_to == new.export_to
            and order_key(old.resource) == order_key(new.resource) and old.gateway_semantics == new.gateway_semantics
            and matches_source_labels(old) == matches_source_labels(new))
