"""RequestAuthentication: which JWTs a workload accepts, and where it finds them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from meshctl.config.kinds.common import (
    STRICT_DURATION,
    Nanos,
    PolicyTargetReference,
    WorkloadSelector,
    header_name_problem,
)
from meshctl.config.kinds.security.targets import SELECTION_GROUP, TARGET_REFERENCE, TARGET_REFERENCES
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import List, Report, Str

__all__ = ["ClaimToHeader", "JWKS_URI", "JWTHeader", "JWTRule", "NON_EMPTY_STRINGS", "RequestAuthentication"]


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


@message(required=["name"])
class JWTHeader(Message):
    """A header that carries the token, and the prefix (such as `Bearer `) before it."""

    name: str = field(Str(min_len=1))
    prefix: str = ""


@message(required=["header", "claim"], rules=[_claim_header_rule])
class ClaimToHeader(Message):
    header: str = field(Str(min_len=1))
    claim: str = field(Str(min_len=1))


@message(required=["issuer"], oneof=[("jwksUri", "jwks_uri", "jwks")])
class JWTRule(Message):
    """`jwks_uri_alias` is `jwksUri` under its proto name, which Istio's CRD also accepts."""

    issuer: str = field(Str(min_len=1))
    audiences: tuple[str, ...] = field(NON_EMPTY_STRINGS)
    jwks_uri: str = field(JWKS_URI)
    jwks_uri_alias: str = field(JWKS_URI, json="jwks_uri")
    jwks: str = field(Str(rules=[_jwks_rule]))
    from_headers: tuple[JWTHeader, ...] = ()
    from_params: tuple[str, ...] = field(NON_EMPTY_STRINGS)
    from_cookies: tuple[str, ...] = field(NON_EMPTY_STRINGS)
    output_payload_to_header: str = ""
    forward_original_token: bool = False
    output_claim_to_headers: tuple[ClaimToHeader, ...] = ()
    timeout: Nanos | None = field(STRICT_DURATION)
    space_delimited_claims: tuple[str, ...] = field(NON_EMPTY_STRINGS)


@message(oneof=[SELECTION_GROUP])
class RequestAuthentication(Message):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = field(TARGET_REFERENCE)
    target_refs: tuple[PolicyTargetReference, ...] = field(TARGET_REFERENCES)
    jwt_rules: tuple[JWTRule, ...] = ()
