"""One AuthorizationPolicy rule → one Envoy RBAC `Policy`, with Istio's exact shape
(security research §4.4, §4.5, §4.7).

A rule becomes `permissions` (one `and_rules` per `to` entry: hosts, methods, paths, ports, then
the permission-side `when` keys) and `principals` (one `and_ids` per `from` entry: principals,
requestPrincipals, serviceAccounts, trustDomains, namespaces, remoteIpBlocks, ipBlocks, then the
principal-side `when` keys). Each attribute gives an `or` of its values and a `not` of the `or`
of its negated values. Envoy ORs the entries of each list and ANDs the two lists.

On a TCP chain HTTP attributes cannot be evaluated, and some values cannot be translated at
all. What happens then depends on the action, as in Istio: an ALLOW rule is dropped whole
(allow less); in DENY, AUDIT and CUSTOM only the offending value goes (deny more).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from envoy.config.rbac.v3 import rbac_pb2
from envoy.type.matcher.v3 import string_pb2, value_pb2

from meshctl.config.kinds.security.authorization_policy import Rule
from meshctl.generate.authz import matchers
from meshctl.generate.authz.matchers import GenerationError
from meshctl.generate.authz.trustdomain import domains_with_aliases, with_aliases

__all__ = [
    "ALLOW",
    "Attribute",
    "DENY",
    "Extended",
    "LOG",
    "M",
    "NEVER_MATCH",
    "RuleModel",
    "Simple",
    "UnknownAttributeError",
    "generate",
    "rule_model",
]

ALLOW = rbac_pb2.RBAC.ALLOW
DENY = rbac_pb2.RBAC.DENY
LOG = rbac_pb2.RBAC.LOG

Simple = Callable[[str, str], "rbac_pb2.Permission | rbac_pb2.Principal"]
Extended = Callable[[str, list[str]], "rbac_pb2.Permission | rbac_pb2.Principal"]


class UnknownAttributeError(ValueError):
    """A `when` key Istio does not know: the rule is skipped whatever the action."""


@dataclass(frozen=True, slots=True)
class Attribute:
    """One key of a rule with its values and negated values, and how its values translate:
    one matcher per value (`simple`, OR'ed) or one matcher for all of them (`extended`)."""

    key: str
    values: tuple[str, ...]
    not_values: tuple[str, ...]
    http_only: bool
    simple: Simple | None = None
    extended: Extended | None = None


@dataclass(slots=True)
class RuleModel:
    """A rule taken apart: the attribute lists of each permission and each principal entry."""

    permissions: list[list[Attribute]] = field(default_factory=list)
    principals: list[list[Attribute]] = field(default_factory=list)


def _host(_key: str, value: str) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(header=matchers.header(":authority", value, ignore_case=True))


def _method(_key: str, value: str) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(header=matchers.header(":method", value))


def _path(_key: str, value: str) -> rbac_pb2.Permission:
    return matchers.path(value)


def _destination_port(_key: str, value: str) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(destination_port=matchers.port(value))


def _destination_ip(_key: str, value: str) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(destination_ip=matchers.cidr(value))


def _sni(_key: str, value: str) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(requested_server_name=matchers.string(value))


def _envoy_filter(key: str, values: list[str]) -> rbac_pb2.Permission:
    """`experimental.envoy.filters.X[Y]`: dynamic metadata Y of filter envoy.filters.X; a value
    written `[v]` matches a list containing v."""
    name, bracket, rest = key.removeprefix("experimental.").partition("[")
    if not bracket or not rest.endswith("]"):
        raise GenerationError(f"invalid key {key!r}")
    each: list[value_pb2.ValueMatcher] = []
    for value in values:
        if value.startswith("[") and value.endswith("]"):
            listed = value_pb2.ValueMatcher()
            listed.list_match.one_of.CopyFrom(matchers.string_value(value[1:-1]))
            each.append(listed)
        else:
            each.append(matchers.string_value(value))
    matcher = each[0] if len(each) == 1 else value_pb2.ValueMatcher(or_match=value_pb2.OrMatcher(value_matchers=each))
    return rbac_pb2.Permission(metadata=matchers.metadata(name, [rest[:-1]], matcher))


def _source_principal(_key: str, value: str) -> rbac_pb2.Principal:
    return matchers.principal_name(value)


def _namespace(_key: str, value: str) -> rbac_pb2.Principal:
    return matchers.namespace(value)


def _trust_domain(_key: str, value: str) -> rbac_pb2.Principal:
    return matchers.trust_domain(value)


def _direct_remote_ip(_key: str, value: str) -> rbac_pb2.Principal:
    return rbac_pb2.Principal(direct_remote_ip=matchers.cidr(value))


def _remote_ip(_key: str, value: str) -> rbac_pb2.Principal:
    return rbac_pb2.Principal(remote_ip=matchers.cidr(value))


def _request_header(key: str, value: str) -> rbac_pb2.Principal:
    return rbac_pb2.Principal(header=matchers.header(key[len("request.headers["):-1], value))


def _claim(claim: str, value: value_pb2.ValueMatcher) -> rbac_pb2.Principal:
    return rbac_pb2.Principal(metadata=matchers.metadata(matchers.JWT_FILTER, [matchers.JWT_PAYLOAD, claim], value))


def _request_principal_one(value: str) -> rbac_pb2.Principal:
    """`iss/sub` (split at the last `/`, issuers being URLs) as two claims of the verified JWT."""
    any_ = ".+"
    issuer, slash, subject = value.rpartition("/")
    if not slash:
        issuer, subject = value, ""
    if value == "*":
        iss, sub = matchers.regex(any_), matchers.regex(any_)
    elif value.startswith("*"):
        if slash:
            iss = matchers.regex(any_) if issuer == "*" else string_pb2.StringMatcher(suffix=issuer[1:])
            sub = string_pb2.StringMatcher(exact=subject)
        else:
            iss, sub = matchers.regex(any_), string_pb2.StringMatcher(suffix=value[1:])
    elif value.endswith("*"):
        if slash:
            iss = string_pb2.StringMatcher(exact=issuer)
            sub = matchers.regex(any_) if subject == "*" else string_pb2.StringMatcher(prefix=subject[:-1])
        else:
            iss, sub = string_pb2.StringMatcher(prefix=value[:-1]), matchers.regex(any_)
    else:
        iss, sub = string_pb2.StringMatcher(exact=issuer), string_pb2.StringMatcher(exact=subject)
    both = rbac_pb2.Principal()
    both.and_ids.ids.add().CopyFrom(_claim("iss", value_pb2.ValueMatcher(string_match=iss)))
    both.and_ids.ids.add().CopyFrom(_claim("sub", value_pb2.ValueMatcher(string_match=sub)))
    return both


def _request_principals(_key: str, values: list[str]) -> rbac_pb2.Principal:
    if len(values) == 1:
        return _request_principal_one(values[0])
    either = rbac_pb2.Principal()
    either.or_ids.ids.extend(_request_principal_one(v) for v in values)
    return either


def _claim_keys(key: str) -> list[str]:
    """`request.auth.claims[a][b]` → [a, b]; a malformed nesting is one key, as written."""
    inner = key[len("request.auth.claims["):-1]
    parts = inner.split("][")
    return parts if all("[" not in p and "]" not in p for p in parts) else [inner]


def _jwt_claim(keys: Callable[[str], list[str]]) -> Extended:
    def make(key: str, values: list[str]) -> rbac_pb2.Principal:
        path = [matchers.JWT_PAYLOAD, *keys(key)]
        return rbac_pb2.Principal(metadata=matchers.metadata(matchers.JWT_FILTER, path, matchers.list_or_scalar(values)))
    return make


def _fixed(claim: str) -> Callable[[str], list[str]]:
    return lambda _key: [claim]


_PERMISSION_WHEN: dict[str, tuple[Simple | None, Extended | None]] = {
    "destination.ip": (_destination_ip, None),
    "destination.port": (_destination_port, None),
    "connection.sni": (_sni, None),
}
_PRINCIPAL_WHEN: dict[str, tuple[Simple | None, Extended | None, bool]] = {
    "source.ip": (_direct_remote_ip, None, False),
    "remote.ip": (_remote_ip, None, False),
    "source.namespace": (_namespace, None, False),
    "source.principal": (_source_principal, None, False),
    "source.trustDomain": (_trust_domain, None, False),
    "request.auth.principal": (None, _request_principals, True),
    "request.auth.audiences": (None, _jwt_claim(_fixed("aud")), True),
    "request.auth.presenter": (None, _jwt_claim(_fixed("azp")), True),
}


def rule_model(rule: Rule, policy_namespace: str, bundle: Sequence[str]) -> RuleModel:
    """The attribute lists of `rule`; UnknownAttributeError for a `when` key Istio lacks.
    Principals are expanded with the trust-domain `bundle` (the trust domain, then aliases)."""
    permission_when: list[Attribute] = []
    principal_when: list[Attribute] = []
    for condition in rule.when:
        key, values, not_values = condition.key, condition.values, condition.not_values
        if key in ("source.principal",):
            values, not_values = tuple(with_aliases(values, bundle)), tuple(with_aliases(not_values, bundle))
        if key == "source.trustDomain":
            values = tuple(domains_with_aliases(values, bundle))
            not_values = tuple(domains_with_aliases(not_values, bundle))
        if key in _PERMISSION_WHEN:
            simple, extended = _PERMISSION_WHEN[key]
            permission_when.append(Attribute(key, values, not_values, False, simple, extended))
        elif key.startswith("experimental.envoy.filters."):
            permission_when.append(Attribute(key, values, not_values, False, extended=_envoy_filter))
        elif key in _PRINCIPAL_WHEN:
            simple_p, extended_p, http_only = _PRINCIPAL_WHEN[key]
            principal_when.append(Attribute(key, values, not_values, http_only, simple_p, extended_p))
        elif key == "source.serviceAccount":
            principal_when.append(Attribute(key, values, not_values, False, _account(policy_namespace)))
        elif key.startswith("request.headers[") and key.endswith("]"):
            principal_when.append(Attribute(key, values, not_values, True, _request_header))
        elif key.startswith("request.auth.claims[") and key.endswith("]"):
            principal_when.append(Attribute(key, values, not_values, True, extended=_jwt_claim(_claim_keys)))
        else:
            raise UnknownAttributeError(f"unknown attribute {key!r}")
    model = RuleModel()
    for entry in rule.from_:
        source = entry.source
        attributes: list[Attribute] = []
        if source is not None:
            attributes = [
                Attribute("source.principal", tuple(with_aliases(source.principals, bundle)),
                          tuple(with_aliases(source.not_principals, bundle)), False, _source_principal),
                Attribute("request.auth.principal", source.request_principals, source.not_request_principals, True,
                          extended=_request_principals),
                Attribute("source.serviceAccount", source.service_accounts, source.not_service_accounts, False,
                          _account(policy_namespace)),
                Attribute("source.trustDomain", tuple(domains_with_aliases(source.trust_domains, bundle)),
                          tuple(domains_with_aliases(source.not_trust_domains, bundle)), False, _trust_domain),
                Attribute("source.namespace", source.namespaces, source.not_namespaces, False, _namespace),
                Attribute("remote.ip", source.remote_ip_blocks, source.not_remote_ip_blocks, False, _remote_ip),
                Attribute("source.ip", source.ip_blocks, source.not_ip_blocks, False, _direct_remote_ip),
            ]
        model.principals.append(attributes + principal_when)
    if not rule.from_:
        model.principals.append(principal_when)
    for target in rule.to:
        operation = target.operation
        operation_attributes: list[Attribute] = []
        if operation is not None:
            operation_attributes = [
                Attribute("request.host", operation.hosts, operation.not_hosts, True, _host),
                Attribute("request.method", operation.methods, operation.not_methods, True, _method),
                Attribute("request.path", operation.paths, operation.not_paths, True, _path),
                Attribute("destination.port", operation.ports, operation.not_ports, False, _destination_port),
            ]
        model.permissions.append(operation_attributes + permission_when)
    if not rule.to:
        model.permissions.append(permission_when)
    return model


def _account(policy_namespace: str) -> Simple:
    return lambda _key, value: matchers.service_account(value, policy_namespace)


M = TypeVar("M", rbac_pb2.Permission, rbac_pb2.Principal)


def _translate(attribute: Attribute, values: tuple[str, ...], tcp: bool, action: int, kind: type[M]) -> list[M]:
    """The matchers of `values` (one per value, or one for all); on a failure, ALLOW raises
    and the other actions leave the value out."""
    def attempt(make: Callable[[], rbac_pb2.Permission | rbac_pb2.Principal]) -> M | None:
        try:
            if tcp and attribute.http_only:
                raise GenerationError(f"{attribute.key} is HTTP only")
            made = make()
        except GenerationError:
            if action == ALLOW:
                raise
            return None
        assert isinstance(made, kind)
        return made

    extended, simple = attribute.extended, attribute.simple
    if extended is not None:
        found = attempt(lambda: extended(attribute.key, list(values)))
        return [found] if found is not None else []
    assert simple is not None
    out: list[M] = []
    for value in values:
        made = attempt(functools.partial(simple, attribute.key, value))
        if made is not None:
            out.append(made)
    return out


def _members(attributes: list[Attribute], tcp: bool, action: int, kind: type[M]) -> list[tuple[M | list[M], bool]]:
    """Per attribute with values: its one matcher (extended) or its matchers to OR, and whether negated."""
    out: list[tuple[M | list[M], bool]] = []
    for attribute in attributes:
        for values, negate in ((attribute.values, False), (attribute.not_values, True)):
            found = _translate(attribute, values, tcp, action, kind) if values else []
            if found:
                out.append((found[0] if attribute.extended is not None else found, negate))
    return out


def _permission(attributes: list[Attribute], tcp: bool, action: int) -> rbac_pb2.Permission:
    members: list[rbac_pb2.Permission] = []
    for found, negate in _members(attributes, tcp, action, rbac_pb2.Permission):
        one = rbac_pb2.Permission(or_rules=rbac_pb2.Permission.Set(rules=found)) if isinstance(found, list) else found
        members.append(rbac_pb2.Permission(not_rule=one) if negate else one)
    return rbac_pb2.Permission(and_rules=rbac_pb2.Permission.Set(rules=members or [rbac_pb2.Permission(any=True)]))


def _principal(attributes: list[Attribute], tcp: bool, action: int) -> rbac_pb2.Principal:
    members: list[rbac_pb2.Principal] = []
    for found, negate in _members(attributes, tcp, action, rbac_pb2.Principal):
        one = rbac_pb2.Principal(or_ids=rbac_pb2.Principal.Set(ids=found)) if isinstance(found, list) else found
        members.append(rbac_pb2.Principal(not_id=one) if negate else one)
    return rbac_pb2.Principal(and_ids=rbac_pb2.Principal.Set(ids=members or [rbac_pb2.Principal(any=True)]))


def generate(model: RuleModel, *, tcp: bool, action: int) -> rbac_pb2.Policy:
    """The Policy of a rule for an HTTP or TCP chain; GenerationError (ALLOW only) drops it."""
    policy = rbac_pb2.Policy()
    policy.permissions.extend(_permission(entry, tcp, action) for entry in model.permissions)
    policy.principals.extend(_principal(entry, tcp, action) for entry in model.principals)
    return policy


NEVER_MATCH = rbac_pb2.Policy(
    permissions=[rbac_pb2.Permission(not_rule=rbac_pb2.Permission(any=True))],
    principals=[rbac_pb2.Principal(not_id=rbac_pb2.Principal(any=True))],
)
"""What a policy without rules contributes: an entry that never matches (an ALLOW `{}` allows nothing)."""
