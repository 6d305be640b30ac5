"""RequestAuthentication → `envoy.filters.http.jwt_authn` (security research §5).

Every JWT rule of the RequestAuthentications that select the workload becomes a provider
`origins-N` (sorted by issuer; equal issuers keep their policy order, a deliberate choice where
Istio's unstable sort leaves it open). The requirement lets a request through without a token
(it simply has no request identity) but refuses one whose token fails verification (401).
Requiring a token is an AuthorizationPolicy's job (`requestPrincipals`).

The verified claims go to dynamic metadata (`payload`), which the RBAC filter reads for
`requestPrincipals` and `request.auth.*`.

Keys: an inline `jwks` is used as written (also beside a `jwksUri`, as istiod does). istiod fetches a `jwksUri` itself and inlines the
result; translation here does no I/O, so a `jwksUri` whose host is a Service of the mesh is
fetched by Envoy through that Service's cluster (`remote_jwks`, Istio's hybrid mode), and one
that is not fails closed, as istiod does when it cannot fetch: a key set no token verifies
against, and a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from meshctl.config.kinds.security.request_authentication import JWTRule
from meshctl.generate import names
from meshctl.generate.protobuf import set_duration, typed

__all__ = [
    "ALWAYS_SPLIT",
    "DEFAULT_TIMEOUT_NANOS",
    "FAIL_CLOSED_JWKS",
    "JWT_AUTHN",
    "JwtFilter",
    "PAYLOAD_KEY",
    "REMOTE_CACHE_SECONDS",
    "ServiceLookup",
    "jwt_filter",
]

JWT_AUTHN = "envoy.filters.http.jwt_authn"
PAYLOAD_KEY = "payload"
DEFAULT_TIMEOUT_NANOS = 5 * 1_000_000_000
REMOTE_CACHE_SECONDS = 300
ALWAYS_SPLIT = ("permission", "scope")
# A public RSA key whose private half was never kept: nothing verifies against it.
FAIL_CLOSED_JWKS = (
    '{"keys":[{"kty":"RSA","e":"AQAB","n":"v3lhyqG1OWBG7txki8t2jIyWJcKE3yCHb5uEhpqcvIQtVeZ_pOonStrPvp-pdQ3TYgBQzMy8'
    'L6oZzkTXwsOGlO0hoOv4bYqK4hKfnxFWMk1qBpCzPJ-rcfsrjzBsQ_dLotnJqi7sA_nC-VVdjjBquUmTYS-YEMHWkfgUoEZQcM_IezHQHbDQ'
    'sJ_3PyS8PBFCrNBiRRp3ByQk5dPCCWkOQaaqFnOu8R6DIc6v6EKNgsAFy35ld_PWDboFpT_LIL6XTNaWEHWms9S7rxaJ51KMj0tt1cPMDpwl2lT'
    '6hvTMQrlaHb8b60Dxn50WeF0O2TviBwji-s5qm_2099fWzEft6w"}]}'
)

ServiceLookup = Callable[[str], object | None]
"""A mesh Service of this hostname, or None when the mesh has none."""


@dataclass(frozen=True, slots=True)
class JwtFilter:
    filter: hcm_pb2.HttpFilter
    warnings: tuple[str, ...] = ()


def _jwks_uri(rule: JWTRule) -> str:
    return rule.jwks_uri or rule.jwks_uri_alias


def _keys(rule: JWTRule, provider: jwt_pb2.JwtProvider, has_service: ServiceLookup) -> str | None:
    """Fill the provider's key source; a warning when it has to fail closed."""
    uri = _jwks_uri(rule)
    if rule.jwks:
        provider.local_jwks.inline_string = rule.jwks
        return None
    if not uri:
        provider.local_jwks.inline_string = FAIL_CLOSED_JWKS
        return (f"issuer {rule.issuer!r}: no jwks and no jwksUri; meshctl does not fetch OpenID discovery "
                "documents, so no token of this issuer verifies")
    parts = urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if has_service(host) is None:
        provider.local_jwks.inline_string = FAIL_CLOSED_JWKS
        return (f"issuer {rule.issuer!r}: jwksUri {uri} is not a Service of the mesh and meshctl does not fetch "
                "keys itself; no token of this issuer verifies (add the key set as jwks, or a ServiceEntry)")
    remote = provider.remote_jwks
    remote.http_uri.uri = uri
    remote.http_uri.cluster = names.outbound_cluster(port, host)
    set_duration(remote.http_uri.timeout, rule.timeout if rule.timeout is not None else DEFAULT_TIMEOUT_NANOS)
    remote.cache_duration.seconds = REMOTE_CACHE_SECONDS
    return None


def _provider(rule: JWTRule, has_service: ServiceLookup) -> tuple[jwt_pb2.JwtProvider, str | None]:
    provider = jwt_pb2.JwtProvider(issuer=rule.issuer, audiences=list(rule.audiences),
                                   forward=rule.forward_original_token,
                                   forward_payload_header=rule.output_payload_to_header,
                                   payload_in_metadata=PAYLOAD_KEY)
    warning = _keys(rule, provider, has_service)
    for header in rule.from_headers:
        provider.from_headers.add(name=header.name, value_prefix=header.prefix)
    provider.from_params.extend(rule.from_params)
    provider.from_cookies.extend(rule.from_cookies)
    for claim in rule.output_claim_to_headers:
        provider.claim_to_headers.add(header_name=claim.header, claim_name=claim.claim)
    provider.normalize_payload_in_metadata.space_delimited_claims.extend(
        sorted({*ALWAYS_SPLIT, *rule.space_delimited_claims}))
    return provider, warning


def _optional(name: str) -> jwt_pb2.JwtRequirement:
    """This provider's token, or none at all."""
    requirement = jwt_pb2.JwtRequirement()
    requirement.requires_any.requirements.add(provider_name=name)
    requirement.requires_any.requirements.add().allow_missing.SetInParent()
    return requirement


def jwt_filter(rules: Sequence[JWTRule], has_service: ServiceLookup) -> JwtFilter | None:
    """The jwt_authn filter for a workload's JWT rules (None without rules)."""
    if not rules:
        return None
    ordered = sorted(rules, key=lambda rule: rule.issuer)
    config = jwt_pb2.JwtAuthentication(bypass_cors_preflight=True)
    warnings = []
    provider_names = [f"origins-{index}" for index in range(len(ordered))]
    for name, rule in zip(provider_names, ordered, strict=True):
        provider, warning = _provider(rule, has_service)
        config.providers[name].CopyFrom(provider)
        if warning:
            warnings.append(warning)
    requirement_rule = config.rules.add()
    requirement_rule.match.prefix = "/"
    if len(provider_names) == 1:
        requirement_rule.requires.CopyFrom(_optional(provider_names[0]))
    else:
        any_of = requirement_rule.requires.requires_any.requirements
        for name in provider_names:
            any_of.add(provider_name=name)
        all_of = any_of.add().requires_all.requirements
        all_of.extend(_optional(name) for name in provider_names)
    return JwtFilter(hcm_pb2.HttpFilter(name=JWT_AUTHN, typed_config=typed(config)), tuple(warnings))
