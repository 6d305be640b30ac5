"""VirtualServices edited in place: the change that needs no pass over the mesh.

Most routing edits change a VirtualService's rules and nothing else: its hosts, gateways,
exportTo and precedence stay, and so does everything a Sidecar's imports or a route
configuration's layout (which virtual hosts exist, which domains each claims) is made of. A
snapshot built from its predecessor by such edits alone records them as RoutingChanges; what
the predecessor computed per egress listener and per route configuration then stays valid with
the new VirtualServices put in place of the old, so the cost of the edit is the cost of what it
reaches (its own routes), not a pass over every service and VirtualService of the mesh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from meshctl.model.istio import VirtualServiceView, order_key
from meshctl.model.scope import Imports, matches_source_labels, streams_of

__all__ = ["RoutingChanges", "in_place"]

ResourceKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True, eq=False)
class RoutingChanges:
    """VirtualServices replaced in place (key → old view, new view), relative to the snapshot
    of `previous_version`; no other kind changed but endpoints, which no route reads."""

    previous_version: str
    replaced: Mapping[ResourceKey, tuple[VirtualServiceView, VirtualServiceView]]

    def carried(self, imports: Imports) -> Imports:
        """An egress listener's imports (services, VirtualServices, and what is read from them:
        see scope.build_scope) of the previous snapshot, with each replaced VirtualService in its
        place: an in-place edit changes none of what decided the import, the order or the
        flags; only the TCP and TLS routes, when the edit was of those."""
        services, virtual_services, by_labels, headless, streams = imports
        updated: list[VirtualServiceView] | None = None
        streamed = False
        for old, new in self.replaced.values():
            if old in virtual_services:  # identity: views compare as objects
                updated = updated if updated is not None else list(virtual_services)
                updated[virtual_services.index(old)] = new
                streamed = streamed or bool(old.spec.tcp or old.spec.tls or new.spec.tcp or new.spec.tls)
        if updated is None:
            return imports
        carried = tuple(updated)
        return services, carried, by_labels, headless, streams_of(carried) if streamed else streams


def in_place(old: VirtualServiceView, new: VirtualServiceView) -> bool:
    """Whether `new` replaces `old` changing only its rules (see the module docstring)."""
    return (old.hosts == new.hosts and old.gateways == new.gateways and old.export_to == new.export_to
            and order_key(old.resource) == order_key(new.resource) and old.gateway_semantics == new.gateway_semantics
            and matches_source_labels(old) == matches_source_labels(new))
