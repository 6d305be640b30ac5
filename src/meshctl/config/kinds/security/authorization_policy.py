"""AuthorizationPolicy: which requests a workload allows, denies, audits or hands to a provider."""

from __future__ import annotations

from typing import Any

from meshctl.config.kinds.common import PolicyTargetReference, WorkloadSelector, ip_or_cidr_problem
from meshctl.config.kinds.security.targets import SELECTION_GROUP, TARGET_REFERENCE, TARGET_REFERENCES
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, List, Report, Str
from meshctl.config.schema import Rule as SchemaRule

__all__ = [
    "AuthorizationPolicy",
    "Condition",
    "ExtensionProvider",
    "From",
    "Operation",
    "Rule",
    "Source",
    "To",
    "wildcard_problem",
]

_SOURCE_FIELDS = (
    "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces",
    "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks",
    "serviceAccounts", "notServiceAccounts", "trustDomains", "notTrustDomains",
)
_IP_FIELDS = ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks")
_OPERATION_FIELDS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")
_CUSTOM_UNSUPPORTED_SOURCES = (
    "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "notNamespaces",
)


def _empty_values_rule(fields: tuple[str, ...]) -> SchemaRule:
    """A rule refusing "" inside any of `fields`: an empty value matches nothing useful."""

    def rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
        for key in fields:
            for index, item in enumerate(value.get(key) or []):
                if item == "":
                    report((*path, key, index), f"{key} must not contain empty values")

    return rule


def wildcard_problem(value: str) -> str | None:
    """Istio's rule for identity-like values: at most one `*`, and only at either end."""
    if value.count("*") > 1 or ("*" in value and not (value.startswith("*") or value.endswith("*"))):
        return f"{value!r}: a '*' may only stand at the start or the end of a value, once"
    return None


_WILDCARD_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces", "requestPrincipals",
                    "notRequestPrincipals")
_WILDCARD_CONDITIONS = frozenset({"source.principal", "source.namespace", "request.auth.principal"})


def _trust_domain_problem(value: str) -> str | None:
    """Istio's trust domain values: exact, `*`, or one `*` at the start or the end; never a path."""
    if "/" in value:
        return f"trust domain {value!r} must not contain '/'"
    return wildcard_problem(value)


def _source_rule(source: dict[str, Any], path: FieldPath, report: Report) -> None:
    if not any(source.get(key) for key in _SOURCE_FIELDS):
        report(path, "source must set at least one field")
    for key in _WILDCARD_FIELDS:
        for index, item in enumerate(source.get(key) or []):
            problem = wildcard_problem(item) if item else None
            if problem:
                report((*path, key, index), problem)
    for key in ("serviceAccounts", "notServiceAccounts"):
        for index, item in enumerate(source.get(key) or []):
            if "*" in item:
                report((*path, key, index), f"{item!r}: service accounts do not take wildcards")
    for key in ("trustDomains", "notTrustDomains"):
        for index, item in enumerate(source.get(key) or []):
            problem = _trust_domain_problem(item) if item else None
            if problem:
                report((*path, key, index), problem)
    for key in _IP_FIELDS:
        for index, block in enumerate(source.get(key) or []):
            problem = ip_or_cidr_problem(block) if block else None
            if problem:
                report((*path, key, index), problem)
    if (source.get("serviceAccounts") or source.get("notServiceAccounts")) and any(
            source.get(key) for key in ("principals", "notPrincipals", "namespaces", "notNamespaces")):
        report(path, "serviceAccounts cannot be combined with principals or namespaces")


def _limited_items(limit: int, length: int) -> SchemaRule:
    def rule(value: list[str], path: FieldPath, report: Report) -> None:
        if len(value) > limit:
            report(path, f"at most {limit} items may be set")
        for index, item in enumerate(value):
            if len(item) > length:
                report((*path, index), f"must be at most {length} characters long")

    return rule


_SERVICE_ACCOUNTS = List(Str(), rules=[_limited_items(16, 320)])


@message(rules=[_empty_values_rule(_SOURCE_FIELDS), _source_rule])
class Source(Message):
    """Who sends the request: peer and request identities, namespaces, IP blocks."""

    principals: tuple[str, ...] = ()
    not_principals: tuple[str, ...] = ()
    request_principals: tuple[str, ...] = ()
    not_request_principals: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    not_namespaces: tuple[str, ...] = ()
    ip_blocks: tuple[str, ...] = ()
    not_ip_blocks: tuple[str, ...] = ()
    remote_ip_blocks: tuple[str, ...] = ()
    not_remote_ip_blocks: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = field(_SERVICE_ACCOUNTS)
    not_service_accounts: tuple[str, ...] = field(_SERVICE_ACCOUNTS)
    trust_domains: tuple[str, ...] = ()
    not_trust_domains: tuple[str, ...] = ()


def _path_template_problem(path_value: str) -> str | None:
    """Istio's path templates (an Envoy URI template): `{*}` is one segment and `{**}` any
    number of them; each stands alone in its segment, no `*`, `{` or `}` appears elsewhere, and
    no operator follows `{**}` (literal segments may: `/foo/{**}/bar`)."""
    if "{*}" not in path_value and "{**}" not in path_value:
        return None
    if not path_value.startswith("/"):
        return f"path template {path_value!r} must start with '/'"
    segments = path_value[1:].split("/")
    operators = [index for index, segment in enumerate(segments) if segment in ("{*}", "{**}")]
    for index, segment in enumerate(segments):
        if index not in operators and any(char in segment for char in "{}*"):
            return f"path template {path_value!r}: segment {segment!r} mixes text and wildcards"
    deep = [index for index in operators if segments[index] == "{**}"]
    if deep and deep[0] != operators[-1]:
        return f"path template {path_value!r}: '{{**}}' must be the last operator"
    return None


def _operation_rule(operation: dict[str, Any], path: FieldPath, report: Report) -> None:
    if not any(operation.get(key) for key in _OPERATION_FIELDS):
        report(path, "operation must set at least one field")
    for key in ("ports", "notPorts"):
        for index, port in enumerate(operation.get(key) or []):
            if port and (not port.isdigit() or not 1 <= int(port) <= 65535):
                report((*path, key, index), f"invalid port {port!r}: must be a number between 1 and 65535")
    for key in ("paths", "notPaths"):
        for index, item in enumerate(operation.get(key) or []):
            problem = _path_template_problem(item)
            if problem:
                report((*path, key, index), problem)


@message(rules=[_empty_values_rule(_OPERATION_FIELDS), _operation_rule])
class Operation(Message):
    """What the request does: host, port, method and path, each with a negated form."""

    hosts: tuple[str, ...] = ()
    not_hosts: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    not_ports: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    not_paths: tuple[str, ...] = ()


_PLAIN_ATTRIBUTES = frozenset(
    {
        "source.ip", "remote.ip", "source.namespace", "source.principal", "source.serviceAccount", "source.trustDomain",
        "request.auth.principal", "request.auth.audiences", "request.auth.presenter", "destination.ip",
        "destination.port", "connection.sni",
    }
)
_IP_ATTRIBUTES = frozenset({"source.ip", "remote.ip", "destination.ip"})


def _attribute_problem(key: str) -> str | None:
    """Why `key` is not an attribute Istio's authorization conditions know, or None."""
    for prefix in ("request.headers[", "request.auth.claims["):
        if key.startswith(prefix):
            if not key.endswith("]") or len(key) == len(prefix) + 1:
                return f"invalid attribute {key!r}: write {prefix}NAME]"
            return None
    if key in _PLAIN_ATTRIBUTES or key.startswith("experimental.envoy.filters."):
        return None
    return f"unknown attribute {key!r}"


def _condition_value_problem(key: str, value: str) -> str | None:
    if key in _IP_ATTRIBUTES:
        return ip_or_cidr_problem(value)
    if key in _WILDCARD_CONDITIONS:
        return wildcard_problem(value)
    if key == "source.trustDomain":
        return _trust_domain_problem(value)
    if key == "destination.port" and (not value.isdigit() or not 1 <= int(value) <= 65535):
        return f"invalid port {value!r}: must be a number between 1 and 65535"
    return None


def _condition_rule(condition: dict[str, Any], path: FieldPath, report: Report) -> None:
    key = condition["key"]
    problem = _attribute_problem(key)
    if problem:
        report((*path, "key"), problem)
        return
    if not condition.get("values") and not condition.get("notValues"):
        report(path, f"condition on {key!r} needs values or notValues")
    for listed in ("values", "notValues"):
        for index, value in enumerate(condition.get(listed) or []):
            problem = _condition_value_problem(key, value)
            if problem:
                report((*path, listed, index), problem)


@message(required=["key"], rules=[_condition_rule])
class Condition(Message):
    """A request attribute (`key`) and the values it must (or must not) have."""

    key: str = field(Str(min_len=1))
    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()


def _explicit_lists_rule(rule: dict[str, Any], path: FieldPath, report: Report) -> None:
    for key in ("from", "to"):
        if key in rule and rule[key] == []:
            report((*path, key), f"{key} must not be an empty list; leave it out to match everything")


def _present(key: str) -> SchemaRule:
    """`key` must be there; unlike `required`, an empty object counts (its own rules judge it)."""

    def rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
        if value.get(key) is None:
            report((*path, key), "required field is missing")

    return rule


@message(rules=[_present("source")])
class From(Message):
    """Rule.From: `source` is always set (validation requires it, possibly empty)."""

    source: Source | None = None


@message(rules=[_present("operation")])
class To(Message):
    """Rule.To: `operation` is always set (validation requires it, possibly empty)."""

    operation: Operation | None = None


@message(rules=[_explicit_lists_rule])
class Rule(Message):
    """Requests match when they match one of `from_`, one of `to` and every `when` (each
    list matching everything when empty)."""

    from_: tuple[From, ...] = ()
    to: tuple[To, ...] = ()
    when: tuple[Condition, ...] = ()


def _custom_action_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    """CUSTOM hands requests to an external authorizer that only sees request attributes."""
    if not (spec.get("provider") or {}).get("name"):
        report((*path, "provider", "name"), "action CUSTOM needs provider.name")
    for rule_index, rule in enumerate(spec.get("rules") or []):
        for from_index, entry in enumerate(rule.get("from") or []):
            for unsupported in _CUSTOM_UNSUPPORTED_SOURCES:
                if entry["source"].get(unsupported):
                    report((*path, "rules", rule_index, "from", from_index, "source", unsupported),
                           f"{unsupported} is not supported with action CUSTOM")
        for when_index, condition in enumerate(rule.get("when") or []):
            key = condition["key"]
            if key in ("source.namespace", "source.principal") or key.startswith("request.auth."):
                report((*path, "rules", rule_index, "when", when_index, "key"),
                       f"condition {key!r} is not supported with action CUSTOM")


def _authorization_policy_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    action = spec.get("action") or "ALLOW"
    if action == "CUSTOM":
        if not spec.get("rules"):
            report((*path, "rules"),
                   "action CUSTOM without rules never applies; add an empty rule {} to apply it to every request")
        else:
            _custom_action_rule(spec, path, report)
    elif spec.get("provider") is not None:
        report((*path, "provider"), f"provider can only be set with action CUSTOM, not {action}")
    if action == "DENY" and not spec.get("rules"):
        report((*path, "rules"),
               "action DENY without rules never applies; add an empty rule {} to deny every request")


@message
class ExtensionProvider(Message):
    """AuthorizationPolicy.ExtensionProvider: the external authorizer of action CUSTOM."""

    name: str = ""


@message(oneof=[SELECTION_GROUP], rules=[_authorization_policy_rule])
class AuthorizationPolicy(Message):
    """`action` is "" when not given (ALLOW)."""

    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = field(TARGET_REFERENCE)
    target_refs: tuple[PolicyTargetReference, ...] = field(TARGET_REFERENCES)
    rules: tuple[Rule, ...] = ()
    action: str = field(Enum("ALLOW", "DENY", "AUDIT", "CUSTOM"))
    provider: ExtensionProvider | None = None
