"""Schemas of Istio's security kinds, with the semantic rules of Istio's validating webhook.

Field names follow the istio.io/api security v1 messages (v1beta1 is the same schema). The
`jwks_uri` spelling that Istio's CRD still accepts is kept next to `jwksUri`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from meshctl.config.kinds.common import (
    POLICY_TARGET_REFERENCE,
    STRICT_DURATION,
    WorkloadSelector,
    header_name_problem,
    ip_or_cidr_problem,
)
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Bool, Enum, List, Map, Obj, Report, Rule, Str

_TARGET_KINDS = frozenset(
    {
        ("", "Service"),
        ("core", "Service"),
        ("networking.istio.io", "ServiceEntry"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("gateway.networking.k8s.io", "GatewayClass"),
    }
)


def _target_ref_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    if value.get("namespace"):
        report((*path, "namespace"), "namespace must not be set: cross-namespace references are not supported")
    group = value.get("group") or ""
    if (group, value["kind"]) not in _TARGET_KINDS:
        report((*path, "kind"),
               f"a policy can target a Service, ServiceEntry or gateway.networking.k8s.io Gateway, "
               f"not {group + '/' if group else ''}{value['kind']}")


TARGET_REFERENCE = POLICY_TARGET_REFERENCE.extend(rules=[_target_ref_rule])


def _target_refs_rule(value: list[Any], path: FieldPath, report: Report) -> None:
    if len(value) > 16:
        report(path, "at most 16 targetRefs may be set")


TARGET_REFERENCES = List(TARGET_REFERENCE, rules=[_target_refs_rule])
SELECTION_GROUP = ("selector", "targetRef", "targetRefs")

# --- PeerAuthentication ----------------------------------------------------------------------------

MTLS_MODE = Enum("UNSET", "DISABLE", "PERMISSIVE", "STRICT")


def _port_key_rule(value: str, path: FieldPath, report: Report) -> None:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        report(path, f"port {value!r} must be a number between 1 and 65535")


def _peer_authentication_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    ports = spec.get("portLevelMtls")
    if ports is None:
        return
    if not ports:
        report((*path, "portLevelMtls"), "portLevelMtls, when set, needs at least one port")
    elif not (spec.get("selector") or {}).get("matchLabels"):
        report((*path, "portLevelMtls"),
               "portLevelMtls needs a selector with matchLabels: mesh- and namespace-wide policies cannot set it")


PEER_AUTHENTICATION = Obj(
    {
        "selector": WorkloadSelector.SCHEMA,
        "mtls": Obj({"mode": MTLS_MODE}),
        "portLevelMtls": Map(Obj({"mode": MTLS_MODE}), key=Str(rules=[_port_key_rule])),
    },
    rules=[_peer_authentication_rule],
)

# --- AuthorizationPolicy ---------------------------------------------------------------------------

_SOURCE_FIELDS = (
    "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces",
    "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks",
    "serviceAccounts", "notServiceAccounts",
)
_IP_FIELDS = ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks")
_OPERATION_FIELDS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")
_CUSTOM_UNSUPPORTED_SOURCES = (
    "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "notNamespaces",
)


def _empty_values_rule(fields: tuple[str, ...]) -> Rule:
    """A rule refusing "" inside any of `fields`: an empty value matches nothing useful."""

    def rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
        for field in fields:
            for index, item in enumerate(value.get(field) or []):
                if item == "":
                    report((*path, field, index), f"{field} must not contain empty values")

    return rule


def _source_rule(source: dict[str, Any], path: FieldPath, report: Report) -> None:
    if not any(source.get(field) for field in _SOURCE_FIELDS):
        report(path, "source must set at least one field")
    for field in _IP_FIELDS:
        for index, block in enumerate(source.get(field) or []):
            problem = ip_or_cidr_problem(block) if block else None
            if problem:
                report((*path, field, index), problem)
    if (source.get("serviceAccounts") or source.get("notServiceAccounts")) and any(
            source.get(field) for field in ("principals", "notPrincipals", "namespaces", "notNamespaces")):
        report(path, "serviceAccounts cannot be combined with principals or namespaces")


def _limited_items(limit: int, length: int) -> Rule:
    def rule(value: list[str], path: FieldPath, report: Report) -> None:
        if len(value) > limit:
            report(path, f"at most {limit} items may be set")
        for index, item in enumerate(value):
            if len(item) > length:
                report((*path, index), f"must be at most {length} characters long")

    return rule


_SERVICE_ACCOUNTS = List(Str(), rules=[_limited_items(16, 320)])

SOURCE = Obj(
    {
        **{field: List(Str()) for field in _SOURCE_FIELDS},
        "serviceAccounts": _SERVICE_ACCOUNTS,
        "notServiceAccounts": _SERVICE_ACCOUNTS,
    },
    rules=[_empty_values_rule(_SOURCE_FIELDS), _source_rule],
)


def _path_template_problem(path_value: str) -> str | None:
    """Istio's path templates: `{*}` is one segment, `{**}` the rest, and both stand alone."""
    if "{" not in path_value and "}" not in path_value:
        return None
    if not path_value.startswith("/"):
        return f"path template {path_value!r} must start with '/'"
    segments = path_value[1:].split("/")
    for index, segment in enumerate(segments):
        if segment == "{**}" and index != len(segments) - 1:
            return f"path template {path_value!r}: '{{**}}' must be the last segment"
        if segment not in ("{*}", "{**}") and any(char in segment for char in "{}*"):
            return f"path template {path_value!r}: segment {segment!r} mixes text and wildcards"
    return None


def _operation_rule(operation: dict[str, Any], path: FieldPath, report: Report) -> None:
    if not any(operation.get(field) for field in _OPERATION_FIELDS):
        report(path, "operation must set at least one field")
    for field in ("ports", "notPorts"):
        for index, port in enumerate(operation.get(field) or []):
            if port and (not port.isdigit() or not 1 <= int(port) <= 65535):
                report((*path, field, index), f"invalid port {port!r}: must be a number between 1 and 65535")
    for field in ("paths", "notPaths"):
        for index, item in enumerate(operation.get(field) or []):
            problem = _path_template_problem(item)
            if problem:
                report((*path, field, index), problem)


OPERATION = Obj(
    {field: List(Str()) for field in _OPERATION_FIELDS},
    rules=[_empty_values_rule(_OPERATION_FIELDS), _operation_rule],
)

_PLAIN_ATTRIBUTES = frozenset(
    {
        "source.ip", "remote.ip", "source.namespace", "source.principal", "source.serviceAccount",
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
    for field in ("values", "notValues"):
        for index, value in enumerate(condition.get(field) or []):
            problem = _condition_value_problem(key, value)
            if problem:
                report((*path, field, index), problem)


CONDITION = Obj(
    {"key": Str(min_len=1), "values": List(Str()), "notValues": List(Str())},
    required=["key"],
    rules=[_condition_rule],
)


def _explicit_lists_rule(rule: dict[str, Any], path: FieldPath, report: Report) -> None:
    for field in ("from", "to"):
        if field in rule and rule[field] == []:
            report((*path, field), f"{field} must not be an empty list; leave it out to match everything")


def _present(field: str) -> Rule:
    """`field` must be there; unlike `required`, an empty object counts (its own rules judge it)."""

    def rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
        if value.get(field) is None:
            report((*path, field), "required field is missing")

    return rule


RULE = Obj(
    {
        "from": List(Obj({"source": SOURCE}, rules=[_present("source")])),
        "to": List(Obj({"operation": OPERATION}, rules=[_present("operation")])),
        "when": List(CONDITION),
    },
    rules=[_explicit_lists_rule],
)


def _custom_action_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    """CUSTOM hands requests to an external authorizer that only sees request attributes."""
    if not (spec.get("provider") or {}).get("name"):
        report((*path, "provider", "name"), "action CUSTOM needs provider.name")
    for rule_index, rule in enumerate(spec.get("rules") or []):
        for from_index, entry in enumerate(rule.get("from") or []):
            for field in _CUSTOM_UNSUPPORTED_SOURCES:
                if entry["source"].get(field):
                    report((*path, "rules", rule_index, "from", from_index, "source", field),
                           f"{field} is not supported with action CUSTOM")
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


AUTHORIZATION_POLICY = Obj(
    {
        "selector": WorkloadSelector.SCHEMA,
        "targetRef": TARGET_REFERENCE,
        "targetRefs": TARGET_REFERENCES,
        "rules": List(RULE),
        "action": Enum("ALLOW", "DENY", "AUDIT", "CUSTOM"),
        "provider": Obj({"name": Str()}),
    },
    oneof=[SELECTION_GROUP],
    rules=[_authorization_policy_rule],
)

# --- RequestAuthentication -------------------------------------------------------------------------


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def _jwks_uri_rule(value: str, path: FieldPath, report: Report) -> None:
    if not _is_http_url(value):
        report(path, f"invalid JWKS URI {value!r}: use an http:// or https:// URL with a host")


def _jwks_rule(value: str, path: FieldPath, report: Report) -> None:
    if not value:
        return
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        document = None
    keys = document.get("keys") if isinstance(document, dict) and "keys" in document else [document]
    if not isinstance(keys, list) or not keys or not all(isinstance(key, dict) and "kty" in key for key in keys):
        report(path, "jwks is not a JSON Web Key Set (a JSON object with a 'keys' list of keys with 'kty')")


def _claim_header_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    problem = header_name_problem(value["header"])
    if problem:
        report((*path, "header"), problem)


JWKS_URI = Str(min_len=1, rules=[_jwks_uri_rule])
NON_EMPTY_STRINGS = List(Str(min_len=1))

JWT_RULE = Obj(
    {
        "issuer": Str(min_len=1),
        "audiences": NON_EMPTY_STRINGS,
        "jwksUri": JWKS_URI,
        "jwks_uri": JWKS_URI,
        "jwks": Str(rules=[_jwks_rule]),
        "fromHeaders": List(Obj({"name": Str(min_len=1), "prefix": Str()}, required=["name"])),
        "fromParams": NON_EMPTY_STRINGS,
        "fromCookies": NON_EMPTY_STRINGS,
        "outputPayloadToHeader": Str(),
        "forwardOriginalToken": Bool(),
        "outputClaimToHeaders": List(
            Obj({"header": Str(min_len=1), "claim": Str(min_len=1)}, required=["header", "claim"],
                rules=[_claim_header_rule])
        ),
        "timeout": STRICT_DURATION,
        "spaceDelimitedClaims": NON_EMPTY_STRINGS,
    },
    required=["issuer"],
    oneof=[("jwksUri", "jwks_uri", "jwks")],
)

REQUEST_AUTHENTICATION = Obj(
    {
        "selector": WorkloadSelector.SCHEMA,
        "targetRef": TARGET_REFERENCE,
        "targetRefs": TARGET_REFERENCES,
        "jwtRules": List(JWT_RULE),
    },
    oneof=[SELECTION_GROUP],
)
