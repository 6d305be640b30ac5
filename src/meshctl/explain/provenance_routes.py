"""Which HTTP rule and match of a VirtualService an Envoy route was translated from.

A route's metadata names its VirtualService but not the rule. Within one virtual host a
VirtualService's routes are its `http[i].match[j]` in order (one route per match, a rule without
matches gives one), some left out (a `port` or `sourceLabels` that does not apply to the proxy,
everything after a catch-all). So the rule of a route is found by walking the VirtualService's
matches and the host's routes side by side, pairing each route with the next match of the same
shape: the same path match, the same header and query parameter names, and the same name where
both have one. When the two cannot be paired (a delegate merged into its root), nothing is
guessed: the answer is None and the whole VirtualService is cited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from meshctl.config.kinds.networking.virtual_service import VirtualService
from meshctl.config.paths import FieldPath
from meshctl.explain.provenance import config_path_of

if TYPE_CHECKING:
    from meshctl.config.kinds.networking.http import HTTPMatchRequest
    from meshctl.config.resource import Resource

__all__ = ["rule_path"]

_CLAIM_PREFIXES = ("@request.auth.claims",)


def rule_path(resource: Resource, path: str, routes: Sequence[Any], index: int) -> FieldPath | None:
    """`("spec", "http", i, "match", j)` (or without the match for a rule that has none) of the
    `index`th of `routes`, which came from `resource` (istio.config `path`)."""
    if not isinstance(resource.view, VirtualService):
        return None
    own = [position for position, route in enumerate(routes) if config_path_of(route.metadata) == path]
    if index not in own:
        return None
    wanted = own.index(index)
    candidates: list[tuple[int, int | None, str, HTTPMatchRequest | None]] = []
    for i, rule in enumerate(resource.view.http):
        if rule.match:
            candidates.extend((i, j, _name(rule.name, match.name), match) for j, match in enumerate(rule.match))
        else:
            candidates.append((i, None, rule.name, None))
    pointer = 0
    for position, route_index in enumerate(own):
        route = routes[route_index]
        while pointer < len(candidates) and not _pairs(route, candidates[pointer][2], candidates[pointer][3]):
            pointer += 1
        if pointer == len(candidates):
            return None
        if position == wanted:
            i, j, _, _ = candidates[pointer]
            return ("spec", "http", i) if j is None else ("spec", "http", i, "match", j)
        pointer += 1
    return None


def _name(rule: str, match: str) -> str:
    return f"{rule}.{match}" if match else rule


def _pairs(route: Any, name: str, match: HTTPMatchRequest | None) -> bool:
    """Could this route have come from this match? (module docstring)"""
    if route.name and name and route.name != name:
        return False
    envoy = route.match
    which = envoy.WhichOneof("path_specifier")
    uri = match.uri if match is not None else None
    if uri is None or (uri.exact is None and uri.prefix is None and uri.regex is None):
        if not ((which == "prefix" and envoy.prefix == "/") or (which == "path_separated_prefix")
                or (which == "safe_regex" and envoy.safe_regex.regex == ".*")):
            return False
    elif uri.exact is not None:
        if which != "path" or envoy.path != uri.exact:
            return False
    elif uri.prefix is not None:
        if which not in ("prefix", "path_separated_prefix") or getattr(envoy, which).rstrip("/") != uri.prefix.rstrip("/"):
            return False
    elif which != "safe_regex" or envoy.safe_regex.regex != uri.regex:
        return False
    headers = {header.name for header in envoy.headers}
    queries = {query.name for query in envoy.query_parameters}
    if match is None:
        return not headers and not queries
    expected = {name for name in (*match.headers, *match.without_headers) if not name.startswith(_CLAIM_PREFIXES)}
    expected |= {pseudo for pseudo, value in ((":method", match.method), (":authority", match.authority),
                                              (":scheme", match.scheme)) if value is not None}
    return headers == expected and queries == set(match.query_params)
