"""AuthorizationPolicies → Envoy's RBAC (and ext_authz) filters for a sidecar's inbound chains
(security research §4.2, §4.3, §4.8).

Actions are evaluated CUSTOM → DENY → ALLOW (AUDIT only logs): each action with policies gets
its own filter, CUSTOM first (with its ext_authz filter, before jwt_authn), then AUDIT, DENY and
ALLOW. Policy names are `ns[NS]-policy[NAME]-rule[N]` (prefixed `istio-ext-authz-` for CUSTOM);
dry-run policies (`istio.io/dry-run`) become shadow rules, which Envoy evaluates and reports
but never enforces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as tcp_rbac

from meshctl.config.kinds.mesh import ExtensionProvider
from meshctl.generate.authz import extauthz
from meshctl.generate.authz.matchers import GenerationError
from meshctl.generate.authz.rules import ALLOW, DENY, LOG, NEVER_MATCH, UnknownAttributeError, generate, rule_model
from meshctl.generate.protobuf import typed
from meshctl.model.security import AuthzPolicy

__all__ = [
    "AuthzFilters",
    "BAD_CUSTOM_SUFFIX",
    "DRY_RUN_ALLOW_PREFIX",
    "DRY_RUN_DENY_PREFIX",
    "HTTP_EXT_AUTHZ",
    "HTTP_RBAC",
    "TCP_EXT_AUTHZ",
    "TCP_RBAC",
    "TCP_STAT_PREFIX",
    "build_filters",
    "policy_name",
]

HTTP_RBAC = "envoy.filters.http.rbac"
TCP_RBAC = "envoy.filters.network.rbac"
HTTP_EXT_AUTHZ = "envoy.filters.http.ext_authz"
TCP_EXT_AUTHZ = "envoy.filters.network.ext_authz"
TCP_STAT_PREFIX = "tcp."
DRY_RUN_ALLOW_PREFIX = "istio_dry_run_allow_"
DRY_RUN_DENY_PREFIX = "istio_dry_run_deny_"
BAD_CUSTOM_SUFFIX = "-deny-due-to-bad-CUSTOM-action"


@dataclass(frozen=True, slots=True)
class AuthzFilters:
    """What a proxy's policies add to its inbound chains. `http_custom` goes before jwt_authn,
    `http` (AUDIT, DENY, ALLOW) after it; `tcp` goes before a TCP chain's tcp_proxy."""

    http_custom: tuple[hcm_pb2.HttpFilter, ...] = ()
    http: tuple[hcm_pb2.HttpFilter, ...] = ()
    tcp: tuple[lc.Filter, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class _Rules:
    """One action's generated policies, enforced and dry-run."""

    action: int
    enforced: rbac_pb2.RBAC | None = None
    shadow: rbac_pb2.RBAC | None = None


def policy_name(namespace: str, name: str, rule: int, *, custom: bool = False) -> str:
    return f"{extauthz.MATCH_PREFIX + '-' if custom else ''}ns[{namespace}]-policy[{name}]-rule[{rule}]"


def _rules(policies: Sequence[AuthzPolicy], action: int, *, tcp: bool, custom: bool, bundle: Sequence[str],
           warnings: list[str]) -> _Rules:
    out = _Rules(action)
    for policy in policies:
        if custom and policy.dry_run:
            warnings.append(f"AuthorizationPolicy {policy.namespace}/{policy.name}: dry-run is not supported "
                            "with action CUSTOM; the policy is ignored")
            continue
        if policy.dry_run:
            if out.shadow is None:
                out.shadow = rbac_pb2.RBAC(action=action)
            target = out.shadow
        else:
            if out.enforced is None:
                out.enforced = rbac_pb2.RBAC(action=action)
            target = out.enforced
        if not policy.spec.rules:
            target.policies[policy_name(policy.namespace, policy.name, 0, custom=custom)].CopyFrom(NEVER_MATCH)
        for index, rule in enumerate(policy.spec.rules):
            name = policy_name(policy.namespace, policy.name, index, custom=custom)
            try:
                model = rule_model(rule, policy.namespace, bundle)
            except UnknownAttributeError as exc:
                warnings.append(f"AuthorizationPolicy {policy.namespace}/{policy.name}: skipped rule {name}: {exc}")
                continue
            try:
                generated = generate(model, tcp=tcp, action=action)
            except GenerationError:
                continue  # an ALLOW rule Envoy cannot evaluate here allows nothing (narrower allow)
            target.policies[name].CopyFrom(generated)
    return out


def _shadow_prefix(shadow: rbac_pb2.RBAC | None) -> str:
    action = shadow.action if shadow is not None else ALLOW
    return {ALLOW: DRY_RUN_ALLOW_PREFIX, DENY: DRY_RUN_DENY_PREFIX}.get(action, "")


def _http_rbac(rules: _Rules) -> hcm_pb2.HttpFilter:
    config = http_rbac.RBAC(shadow_rules_stat_prefix=_shadow_prefix(rules.shadow))
    if rules.enforced is not None:
        config.rules.CopyFrom(rules.enforced)
    if rules.shadow is not None:
        config.shadow_rules.CopyFrom(rules.shadow)
    return hcm_pb2.HttpFilter(name=HTTP_RBAC, typed_config=typed(config))


def _tcp_rbac(rules: _Rules) -> lc.Filter:
    config = tcp_rbac.RBAC(stat_prefix=TCP_STAT_PREFIX, shadow_rules_stat_prefix=_shadow_prefix(rules.shadow))
    if rules.enforced is not None:
        config.rules.CopyFrom(rules.enforced)
    if rules.shadow is not None:
        config.shadow_rules.CopyFrom(rules.shadow)
    return lc.Filter(name=TCP_RBAC, typed_config=typed(config))


def _bad_custom(rules: rbac_pb2.RBAC | None) -> rbac_pb2.RBAC:
    """A CUSTOM policy whose provider cannot be used denies what it matches (fail closed)."""
    out = rbac_pb2.RBAC(action=DENY)
    for name, policy in sorted((rules.policies if rules is not None else {}).items()):
        out.policies[name + BAD_CUSTOM_SUFFIX].CopyFrom(policy)
    return out


def _custom(policies: Sequence[AuthzPolicy], providers: Sequence[ExtensionProvider], lookup: extauthz.HostLookup,
            bundle: Sequence[str], warnings: list[str]) -> tuple[list[hcm_pb2.HttpFilter], list[lc.Filter]]:
    http_rules = _rules(policies, DENY, tcp=False, custom=True, bundle=bundle, warnings=warnings)
    tcp_rules = _rules(policies, DENY, tcp=True, custom=True, bundle=bundle, warnings=warnings)
    if http_rules.enforced is None:
        return [], []
    chosen = sorted({p.spec.provider.name if p.spec.provider is not None else "" for p in policies if not p.dry_run})
    try:
        if len(chosen) != 1:
            raise ValueError(f"only 1 provider can be used per workload, found multiple providers: {chosen}")
        provider = next((p for p in providers if p.name == chosen[0]), None)
        if provider is None:
            known = ", ".join(p.name for p in providers) or "none"
            raise ValueError(f"extension provider {chosen[0]!r} is not in the mesh config (available: {known})")
        built = extauthz.build(provider, lookup)
    except ValueError as exc:
        warnings.append(f"CUSTOM action: {exc}; the CUSTOM rules deny the requests they match instead")
        http_config = http_rbac.RBAC(rules=_bad_custom(http_rules.enforced))
        tcp_config = tcp_rbac.RBAC(rules=_bad_custom(tcp_rules.enforced), stat_prefix=TCP_STAT_PREFIX)
        return ([hcm_pb2.HttpFilter(name=HTTP_RBAC, typed_config=typed(http_config))],
                [lc.Filter(name=TCP_RBAC, typed_config=typed(tcp_config))])
    http_shadow = http_rbac.RBAC(shadow_rules=http_rules.enforced, shadow_rules_stat_prefix=extauthz.SHADOW_STAT_PREFIX)
    http = [hcm_pb2.HttpFilter(name=HTTP_RBAC, typed_config=typed(http_shadow)),
            hcm_pb2.HttpFilter(name=HTTP_EXT_AUTHZ, typed_config=typed(built.http))]
    if built.tcp is None:
        return http, []  # an HTTP authorizer cannot judge TCP connections: Istio leaves TCP chains alone
    tcp_shadow = tcp_rbac.RBAC(shadow_rules=tcp_rules.enforced, stat_prefix=TCP_STAT_PREFIX,
                               shadow_rules_stat_prefix=extauthz.SHADOW_STAT_PREFIX)
    return http, [lc.Filter(name=TCP_RBAC, typed_config=typed(tcp_shadow)),
                  lc.Filter(name=TCP_EXT_AUTHZ, typed_config=typed(built.tcp))]


def _no_services(_host: str) -> Sequence[str]:
    return ()


def build_filters(policies: Sequence[AuthzPolicy], *, bundle: Sequence[str],
                  providers: Sequence[ExtensionProvider] = (),
                  lookup: extauthz.HostLookup = _no_services) -> AuthzFilters:
    """The filters for policies already selected and ordered for a proxy (model.security).
    `bundle` is the trust domain and its aliases; `providers` and `lookup` resolve CUSTOM."""
    warnings: list[str] = []
    by_action: dict[str, list[AuthzPolicy]] = {"CUSTOM": [], "AUDIT": [], "DENY": [], "ALLOW": []}
    for policy in policies:
        by_action[policy.spec.action or "ALLOW"].append(policy)
    http_custom, tcp = _custom(by_action["CUSTOM"], providers, lookup, bundle, warnings) \
        if by_action["CUSTOM"] else ([], [])
    http: list[hcm_pb2.HttpFilter] = []
    for name, action in (("AUDIT", LOG), ("DENY", DENY), ("ALLOW", ALLOW)):
        if not by_action[name]:
            continue
        http.append(_http_rbac(_rules(by_action[name], action, tcp=False, custom=False, bundle=bundle,
                                      warnings=warnings)))
        tcp.append(_tcp_rbac(_rules(by_action[name], action, tcp=True, custom=False, bundle=bundle, warnings=[])))
    return AuthzFilters(tuple(http_custom), tuple(http), tuple(tcp), tuple(dict.fromkeys(warnings)))
