"""A sidecar's VirtualService routes as bytes, rendered from byte templates by shape.

A mesh's VirtualServices mostly repeat a few rules (all paths, or a header match, to a subset
of the service, with Istio's default retries), differing only in the VirtualService's name,
its config path and the destination hosts. A route built as a message costs a dozen messages
and wrappers; rendering it from a template (generate.templates) costs a join. So a route's
shape is everything its bytes read but those strings: the rule but its destinations, the
match, the listener port and the proxy's flags, and for each destination its weight, its
headers and its cluster name but the host; the strings are its values.

A rule that mirrors (its mirrors' clusters are not values), or whose destinations hash, is
built as before; so is any shape ShapeTemplates finds its template does not reproduce.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc

from meshctl.config.kinds.networking.http import HTTPMatchRequest
from meshctl.config.kinds.networking.virtual_service import HTTPRoute
from meshctl.generate import httproute, names
from meshctl.generate.core import istio_metadata
from meshctl.generate.templates import ShapeTemplates, slot

__all__ = ["RouteShapes"]

_RULE = operator.attrgetter(*(f.name for f in dataclasses.fields(HTTPRoute) if f.name != "route"))
"""Every field of a rule but its destinations (generic: a field added later is in the shape)."""


class RouteShapes:
    """One generation's routes by shape: their templates, and whether each shape's route
    catches every request (which ends a VirtualService's routes: a rendered route is never
    built to ask)."""

    __slots__ = ("_shapes", "_templates")

    def __init__(self) -> None:
        self._templates = ShapeTemplates()
        self._shapes: dict[_Shape, _Shape] = {}
        """Each shape once: a route's shape is looked up as the first one equal to it, which
        the templates, keyed by it, then find by identity, not by comparing views."""

    def route(self, rule: HTTPRoute, match: HTTPMatchRequest | None, *, config: str, vs_name: str, port: int,
              cluster_of: httproute.ClusterOf, hash_of: httproute.HashOf, grpc_timeout_header: bool,
              gateway_semantics: bool) -> tuple[bytes, bool] | None:
        """`httproute.build_route`'s route for a sidecar (`config` the VirtualService's config
        path, for its metadata), serialized, and whether it catches all; None when it has none.
        Destinations are resolved here, once each, in build_route's order."""
        if rule.mirror is not None or rule.mirrors:
            metadata = _metadata(config)
            return _serialized(httproute.build_route(
                rule, match, vs_name=vs_name, metadata=metadata, listener_port=port, cluster_of=cluster_of,
                hash_of=hash_of, grpc_timeout_header=grpc_timeout_header, gateway_semantics=gateway_semantics))
        hosts: list[str] = []
        prefixes: list[str] = []
        hashes: list[rc.RouteAction.HashPolicy | None] = []
        destinations = httproute.routed_destinations(rule)
        for destination in destinations:
            cluster = cluster_of(destination.destination)
            hashes.append(hash_of(destination.destination))
            parsed = names.parse_cluster(cluster)
            host = parsed[3] if parsed is not None else ""
            hosts.append(host)
            prefixes.append(cluster[:len(cluster) - len(host)])
        shape: _Shape | None = None
        if not any(hashed is not None for hashed in hashes) and all(hosts):
            try:
                shape = _Shape((_RULE(rule), match, port, grpc_timeout_header, gateway_semantics,
                                tuple((d.weight, d.headers, prefix) for d, prefix in zip(destinations, prefixes, strict=True))))
            except TypeError:  # a view built with a plain dict (tests build some)
                shape = None
        caught: list[bool] = []

        def build(values: Sequence[str]) -> list[rc.Route]:
            clusters = iter([prefix + host for prefix, host in zip(prefixes, values[2:], strict=True)])
            hashed = iter(hashes)
            built = httproute.build_route(
                rule, match, vs_name=values[1], metadata=_metadata(values[0]), listener_port=port,
                cluster_of=lambda _: next(clusters), hash_of=lambda _: next(hashed),
                grpc_timeout_header=grpc_timeout_header, gateway_semantics=gateway_semantics)
            if built is None:
                return []
            caught[:] = [httproute.is_catch_all(built)]
            return [built]

        if shape is not None:
            shape = self._shapes.setdefault(shape, shape)
        values = (config, vs_name, *hosts)
        made = self._templates.serialized(shape, values, _marks(len(values)), build)
        if not made:
            return None
        if caught:
            if shape is not None:
                shape.catch_all = caught[0]
            return made[0], caught[0]
        assert shape is not None and shape.catch_all is not None  # rendered: built before
        return made[0], shape.catch_all


class _Shape:
    """A route's shape, hashed once (its parts are views, whose hash is computed from all
    their fields each time), and whether its route catches all requests, once built."""

    __slots__ = ("_hash", "catch_all", "parts")

    def __init__(self, parts: tuple[object, ...]) -> None:
        self.parts = parts
        self._hash = hash(parts)
        self.catch_all: bool | None = None

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Shape) and self._hash == other._hash and self.parts == other.parts


_MARKS = tuple(slot(index) for index in range(8))


def _marks(count: int) -> Sequence[str]:
    """The markers of `count` values (most routes have 3: the config path, the name, a host)."""
    return _MARKS[:count] if count <= len(_MARKS) else [slot(index) for index in range(count)]


def _metadata(config: str) -> base_pb2.Metadata:
    metadata = base_pb2.Metadata()
    istio_metadata(metadata, {"config": config})
    return metadata


def _serialized(route: rc.Route | None) -> tuple[bytes, bool] | None:
    return None if route is None else (route.SerializeToString(deterministic=True), httproute.is_catch_all(route))

