"""Envoy's RBAC filters (network and HTTP), evaluated for one request.

An RBAC config has an action and named policies; a policy matches when one of its permissions
(what is asked: path, method, port...) and one of its principals (who asks: the peer's
certificate identity, its address...) match. ALLOW lets the request through only if a policy
matches, DENY refuses it if one does, LOG changes nothing. Istio names each policy after the
AuthorizationPolicy rule it came from (`ns[NS]-policy[NAME]-rule[N]`), which is how the
decision is traced back to its resource.

What a request carries only at run time (a JWT's claims, filter state) cannot be decided here:
such a criterion is UNKNOWN, and so is the decision it could change, never a guess. The peer's
identity is the `--from-principal` SPIFFE ID, known only on an mTLS connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from meshctl.explain.matchers import Check, Verdict, cidr_contains, header_check, string_match
from meshctl.explain.request import Request, Transport

__all__ = ["Decision", "decide"]

_ACTIONS = {0: "ALLOW", 1: "DENY", 2: "LOG"}


@dataclass(frozen=True, slots=True)
class Decision:
    """The filter's verdict (`allowed` None when it cannot be decided) and why: the matching
    policies (or, for ALLOW, why none matched)."""

    action: str
    allowed: bool | None
    matched: tuple[str, ...]
    undecided: tuple[str, ...]
    reasons: tuple[str, ...]
    missed: tuple[tuple[str, str], ...] = ()


def _any(checks: Iterable[Verdict]) -> Verdict:
    verdicts = set(checks)
    if Verdict.MATCH in verdicts:
        return Verdict.MATCH
    if Verdict.UNKNOWN in verdicts:
        return Verdict.UNKNOWN
    return Verdict.MISS


def _all(checks: Iterable[Verdict]) -> Verdict:
    verdicts = set(checks)
    if Verdict.MISS in verdicts:
        return Verdict.MISS
    if Verdict.UNKNOWN in verdicts:
        return Verdict.UNKNOWN
    return Verdict.MATCH


def _not(verdict: Verdict) -> Verdict:
    return {Verdict.MATCH: Verdict.MISS, Verdict.MISS: Verdict.MATCH}.get(verdict, Verdict.UNKNOWN)


class _Context:
    """The request as RBAC sees it: `http` False for the network filter, which sees no headers."""

    def __init__(self, request: Request, dst_ip: str, dst_port: int, http: bool, server_name: str) -> None:
        self.request = request
        self.dst_ip = dst_ip
        self.dst_port = dst_port
        self.http = http
        self.server_name = server_name

    def permission(self, permission: Any) -> Verdict:
        which = permission.WhichOneof("rule")
        if which == "any":
            return Verdict.MATCH if permission.any else Verdict.MISS
        if which == "and_rules":
            return _all(self.permission(rule) for rule in permission.and_rules.rules)
        if which == "or_rules":
            return _any(self.permission(rule) for rule in permission.or_rules.rules)
        if which == "not_rule":
            return _not(self.permission(permission.not_rule))
        if which == "header":
            return header_check(permission.header, self.request).verdict if self.http else Verdict.MISS
        if which == "url_path":
            return self._url_path(permission.url_path)
        if which == "destination_ip":
            return Verdict.of(cidr_contains(self.dst_ip, permission.destination_ip.address_prefix,
                                            permission.destination_ip.prefix_len.value))
        if which == "destination_port":
            return Verdict.of(permission.destination_port == self.dst_port)
        if which == "destination_port_range":
            port_range = permission.destination_port_range
            return Verdict.of(int(port_range.start) <= self.dst_port < int(port_range.end))
        if which == "requested_server_name":
            return Verdict.of(string_match(permission.requested_server_name, self.server_name))
        return Verdict.UNKNOWN  # metadata, matcher extensions, URI templates

    def principal(self, principal: Any) -> Verdict:
        which = principal.WhichOneof("identifier")
        if which == "any":
            return Verdict.MATCH if principal.any else Verdict.MISS
        if which == "and_ids":
            return _all(self.principal(item) for item in principal.and_ids.ids)
        if which == "or_ids":
            return _any(self.principal(item) for item in principal.or_ids.ids)
        if which == "not_id":
            return _not(self.principal(principal.not_id))
        if which == "authenticated":
            return self._authenticated(principal.authenticated)
        if which in ("source_ip", "direct_remote_ip", "remote_ip"):
            cidr = getattr(principal, which)
            return Verdict.of(cidr_contains(self.request.source_ip, cidr.address_prefix, cidr.prefix_len.value))
        if which == "header":
            return header_check(principal.header, self.request).verdict if self.http else Verdict.MISS
        if which == "url_path":
            return self._url_path(principal.url_path)
        return Verdict.UNKNOWN  # metadata (request principals from a JWT), filter state, custom

    def _url_path(self, matcher: Any) -> Verdict:
        if not self.http:
            return Verdict.MISS
        path = self.request.path.split("?", 1)[0]
        return Verdict.of(string_match(matcher.path, path))

    def _authenticated(self, authenticated: Any) -> Verdict:
        if self.request.transport is not Transport.mtls:
            return Verdict.MISS
        if not authenticated.HasField("principal_name"):
            return Verdict.MATCH
        if not self.request.principal:
            return Verdict.UNKNOWN
        return Verdict.of(string_match(authenticated.principal_name, self.request.principal))


def decide(rbac: Any, request: Request, dst_ip: str, dst_port: int, *, http: bool, server_name: str = "") -> Decision:
    """An `envoy.config.rbac.v3.RBAC` (the filter's `rules`) for one request."""
    context = _Context(request, dst_ip, dst_port, http, server_name)
    action = _ACTIONS.get(rbac.action, str(rbac.action))
    matched, undecided, missed = [], [], []
    for name in sorted(rbac.policies):
        policy = rbac.policies[name]
        permission = _any(context.permission(p) for p in policy.permissions)
        principal = _any(context.principal(p) for p in policy.principals)
        condition = Verdict.UNKNOWN if policy.HasField("condition") or policy.HasField("checked_condition") else Verdict.MATCH
        verdict = _all([permission, principal, condition])
        if verdict is Verdict.MATCH:
            matched.append(name)
        elif verdict is Verdict.UNKNOWN:
            undecided.append(name)
        else:
            why = [what for what, result in (("no permission matches the request", permission),
                                             ("no principal matches the peer", principal)) if result is Verdict.MISS]
            missed.append((name, "; ".join(why)))
    if action == "LOG":
        return Decision(action, True, tuple(matched), tuple(undecided), ("LOG policies only log",), tuple(missed))
    hit = True if matched else (None if undecided else False)
    allowed: bool | None
    if action == "ALLOW":
        allowed = hit
    else:
        allowed = None if hit is None else not hit
    reasons = []
    if matched:
        reasons.append(f"{action} policy matched: {', '.join(matched)}")
    if undecided:
        reasons.append(f"cannot decide policies {', '.join(undecided)} (they depend on what only the running "
                       "request carries, such as JWT claims or a peer identity not given with --from-principal)")
    if not matched and not undecided:
        reasons.append(f"no {action} policy matches" + (" (none defined)" if not rbac.policies else ""))
    return Decision(action, allowed, tuple(matched), tuple(undecided), tuple(reasons), tuple(missed))


def principal_check(request: Request) -> Check:
    """What the RBAC filters know of the peer, for the explanation."""
    if request.transport is not Transport.mtls:
        return Check(Verdict.MISS, "no peer identity: the connection is not mTLS")
    if not request.principal:
        return Check(Verdict.UNKNOWN, "peer identity unknown (give --from-principal)")
    return Check(Verdict.MATCH, f"peer identity {request.principal}")
