"""HTTP routing as Envoy's router does it: virtual host by domain, then the first matching route.

Virtual host: the Host header, lower-cased (without its port when the route configuration sets
`ignore_port_in_host_matching`), against every domain: an exact domain first, then suffix
wildcards (`*.example.com`, `*-bar.example.com`) longest first, then prefix wildcards
(`example.*`) longest first, then `*`. A wildcard never matches an empty string.

Route: in order, the first whose every criterion matches: the path (`prefix` against the whole
`:path`, `path` and `safe_regex` against it without the query string; `path_separated_prefix`
needs `/`, `?` or the end right after the prefix; `case_sensitive` for all but regexes), then
headers, query parameters, gRPC, TLS context, runtime fraction. A criterion explain cannot
decide (dynamic metadata from a JWT, a fraction below 100%) does not stop the walk: the route is
kept as a possibility and the walk goes on to the route that matches otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshctl.explain.matchers import Check, Verdict, combine, header_check, query_check, query_params, regex_full_match
from meshctl.explain.request import Request, Transport

__all__ = ["RouteCandidate", "match_route", "normalize_path", "route_label", "select_virtual_host"]


def host_for_matching(request: Request, ignore_port: bool) -> str:
    host = request.authority.lower()
    if ignore_port:
        if host.startswith("["):
            host = host.split("]", 1)[0] + "]"
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
    return host


def _domain_score(domain: str, host: str) -> tuple[int, int] | None:
    """(rank, length): exact 3, suffix wildcard 2, prefix wildcard 1, `*` 0; None: no match."""
    domain = domain.lower()
    if domain == "*":
        return (0, 0)
    if domain.startswith("*"):
        suffix = domain[1:]
        if host.endswith(suffix) and len(host) > len(suffix):
            return (2, len(suffix))
        return None
    if domain.endswith("*"):
        prefix = domain[:-1]
        if host.startswith(prefix) and len(host) > len(prefix):
            return (1, len(prefix))
        return None
    return (3, len(domain)) if domain == host else None


def domain_matches(domain: str, host: str) -> bool:
    """Does a virtual host domain match the (lower-case) host?"""
    return _domain_score(domain, host) is not None


@dataclass(frozen=True, slots=True)
class HostChoice:
    index: int | None
    domain: str
    kind: str


def select_virtual_host(config: Any, request: Request) -> HostChoice:
    """Envoy's virtual host for the request's Host (module docstring)."""
    host = host_for_matching(request, config.ignore_port_in_host_matching)
    best: tuple[tuple[int, int], int, str] | None = None
    for index, vhost in enumerate(config.virtual_hosts):
        for domain in vhost.domains:
            score = _domain_score(domain, host)
            if score is not None and (best is None or score > best[0]):
                best = (score, index, domain)
    if best is None:
        return HostChoice(None, "", "")
    kind = {3: "exact domain", 2: "suffix wildcard", 1: "prefix wildcard", 0: "catch-all domain"}[best[0][0]]
    return HostChoice(best[1], best[2], kind)


def normalize_path(path: str, merge_slashes: bool) -> str:
    """RFC 3986 dot-segment removal (HCM `normalize_path`), and `//` merged when asked."""
    raw, question, query = path.partition("?")
    if merge_slashes:
        while "//" in raw:
            raw = raw.replace("//", "/")
    if raw.startswith("/"):
        parts = raw.split("/")[1:]
        kept: list[str] = []
        for part in parts:
            if part == "..":
                if kept:
                    kept.pop()
            elif part != ".":
                kept.append(part)
        if parts and parts[-1] in (".", ".."):
            kept.append("")
        raw = "/" + "/".join(kept)
    return raw + question + query


@dataclass(frozen=True, slots=True)
class RouteCandidate:
    """A route's verdict for the request and the checks behind it."""

    index: int
    verdict: Verdict
    checks: tuple[Check, ...]

    @property
    def reasons(self) -> list[str]:
        return [check.reason for check in self.checks if check.verdict is not Verdict.MATCH]

    @property
    def matched_reasons(self) -> list[str]:
        return [check.reason for check in self.checks if check.verdict is Verdict.MATCH]


def route_label(route: Any, index: int) -> str:
    return f"{route.name}" if route.name else f"routes[{index}]"


def _path_check(match: Any, path: str) -> Check:
    which = match.WhichOneof("path_specifier")
    sensitive = not match.HasField("case_sensitive") or match.case_sensitive.value
    without_query = path.split("?", 1)[0]
    case = "" if sensitive else " (any case)"

    def same(a: str, b: str) -> tuple[str, str]:
        return (a, b) if sensitive else (a.lower(), b.lower())

    if which == "prefix":
        value, wanted = same(path, match.prefix)
        return Check(Verdict.of(value.startswith(wanted)), f'path "{path}" (wanted prefix "{match.prefix}"{case})')
    if which == "path":
        value, wanted = same(without_query, match.path)
        return Check(Verdict.of(value == wanted), f'path "{without_query}" (wanted exactly "{match.path}"{case})')
    if which == "safe_regex":
        found = regex_full_match(match.safe_regex.regex, without_query)
        return Check(Verdict.of(found), f'path "{without_query}" (wanted regex "{match.safe_regex.regex}")')
    if which == "path_separated_prefix":
        value, wanted = same(without_query, match.path_separated_prefix)
        ok = value == wanted or (value.startswith(wanted) and (wanted.endswith("/") or value[len(wanted)] == "/"))
        return Check(Verdict.of(ok), f'path "{without_query}" (wanted path_separated_prefix "{match.path_separated_prefix}"{case})')
    if which == "connect_matcher":
        return Check(Verdict.of(False), "not a CONNECT request (wanted connect_matcher)")
    return Check(Verdict.UNKNOWN, f"path match {which} is not evaluated by explain")


def _fraction(match: Any) -> Check | None:
    if not match.HasField("runtime_fraction"):
        return None
    default = match.runtime_fraction.default_value
    denominator = {0: 100, 1: 10_000, 2: 1_000_000}.get(default.denominator, 100)
    percent = 100.0 * default.numerator / denominator
    key = match.runtime_fraction.runtime_key
    where = f" (runtime key {key} can change it)" if key else ""
    if percent >= 100:
        return Check(Verdict.MATCH, f"runtime fraction 100%{where}")
    if percent <= 0:
        return Check(Verdict.MISS, f"runtime fraction 0%{where}")
    return Check(Verdict.UNKNOWN, f"matches {percent:g}% of requests at random (runtime_fraction){where}")


def evaluate(route: Any, index: int, request: Request, path: str) -> RouteCandidate:
    """Every criterion of one route, against the request (module docstring)."""
    match = route.match
    checks = [_path_check(match, path)]
    checks.extend(header_check(header, request) for header in match.headers)
    if match.query_parameters:
        params = query_params(path)
        checks.extend(query_check(query, params) for query in match.query_parameters)
    if match.HasField("grpc"):
        content_type = ",".join(request.header_values("content-type"))
        checks.append(Check(Verdict.of(content_type.startswith("application/grpc")),
                            f'content-type "{content_type}" (wanted gRPC)'))
    if match.HasField("tls_context"):
        checks.extend(_tls_checks(match.tls_context, request))
    for metadata in match.dynamic_metadata:
        checks.append(Check(Verdict.UNKNOWN, f"depends on dynamic metadata of {metadata.filter} (a JWT claim, "
                                             "known only once the request is authenticated)"))
    for state in match.filter_state:
        checks.append(Check(Verdict.UNKNOWN, f"depends on filter state {state.key}"))
    fraction = _fraction(match)
    if fraction is not None:
        checks.append(fraction)
    return RouteCandidate(index, combine(checks), tuple(checks))


def _tls_checks(context: Any, request: Request) -> list[Check]:
    tls = request.transport is not Transport.plaintext
    checks = []
    if context.HasField("presented"):
        checks.append(Check(Verdict.of(context.presented.value == (request.transport is Transport.mtls)),
                            f"client certificate {'presented' if request.transport is Transport.mtls else 'absent'}"))
    if context.HasField("validated"):
        checks.append(Check(Verdict.of(context.validated.value == (request.transport is Transport.mtls and tls)),
                            "client certificate validation"))
    return checks


def match_route(routes: Sequence[Any], request: Request, path: str) -> tuple[list[RouteCandidate], RouteCandidate | None]:
    """The routes tried, in order, up to the first certain match (returned, or None): earlier
    ones each missed, or could match but it cannot be decided here (module docstring)."""
    tried: list[RouteCandidate] = []
    for index, route in enumerate(routes):
        candidate = evaluate(route, index, request, path)
        if candidate.verdict is Verdict.MATCH:
            return tried, candidate
        tried.append(candidate)
    return tried, None
