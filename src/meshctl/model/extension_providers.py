"""`meshConfig.extensionProviders` of the external-authorization kinds, the targets of
AuthorizationPolicy action CUSTOM (security research §4.8).

Only `envoyExtAuthzHttp` and `envoyExtAuthzGrpc` are read; providers of other kinds (tracing,
access logging) are kept by name alone so a CUSTOM policy naming one is refused as Istio does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HTTP = "envoyExtAuthzHttp"
GRPC = "envoyExtAuthzGrpc"


@dataclass(frozen=True, slots=True)
class RequestBody:
    """includeRequestBodyInCheck: how much of the body the authorizer sees."""

    max_request_bytes: int = 0
    allow_partial_message: bool = False
    pack_as_bytes: bool = False


@dataclass(frozen=True, slots=True)
class ExtensionProvider:
    """One provider; `kind` is HTTP, GRPC, or "" for a kind that is not an authorizer. Header
    maps are sorted pairs so the mesh config stays hashable (it keys generation caches)."""

    name: str
    kind: str = ""
    service: str = ""
    port: int = 0
    timeout_nanos: int | None = None
    fail_open: bool = False
    clear_route_cache: bool = False
    status_on_error: str = ""
    path_prefix: str = ""
    include_request_headers_in_check: tuple[str, ...] = ()
    include_headers_in_check: tuple[str, ...] = ()
    include_additional_headers_in_check: tuple[tuple[str, str], ...] = ()
    include_request_body_in_check: RequestBody | None = None
    headers_to_upstream_on_allow: tuple[str, ...] = ()
    headers_to_downstream_on_deny: tuple[str, ...] = ()
    headers_to_downstream_on_allow: tuple[str, ...] = ()


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{what}: expected a list of strings")
    return tuple(value)


def provider_from(entry: Mapping[str, Any]) -> ExtensionProvider:
    """One `extensionProviders` entry; ValueError naming the field when a value has the wrong type."""
    from meshctl.config.values import parse_duration

    name = entry.get("name")
    if not isinstance(name, str):
        raise ValueError("name: expected a string")
    kind = HTTP if HTTP in entry else GRPC if GRPC in entry else ""
    if not kind:
        return ExtensionProvider(name)
    body = entry[kind]
    if not isinstance(body, dict):
        raise ValueError(f"{kind}: expected a map")
    fields: dict[str, Any] = {"name": name, "kind": kind}
    for key, attribute, check in (("service", "service", str), ("statusOnError", "status_on_error", str),
                                  ("pathPrefix", "path_prefix", str), ("failOpen", "fail_open", bool),
                                  ("clearRouteCache", "clear_route_cache", bool)):
        if key in body:
            if not isinstance(body[key], check):
                raise ValueError(f"{kind}.{key}: expected a {check.__name__}")
            fields[attribute] = body[key]
    if "port" in body:
        if isinstance(body["port"], bool) or not isinstance(body["port"], int):
            raise ValueError(f"{kind}.port: expected a number")
        fields["port"] = body["port"]
    if "timeout" in body:
        nanos = parse_duration(body["timeout"]) if isinstance(body["timeout"], str) else None
        if nanos is None:
            raise ValueError(f"{kind}.timeout: expected a duration such as 10s")
        fields["timeout_nanos"] = nanos
    for key, attribute in (("includeRequestHeadersInCheck", "include_request_headers_in_check"),
                           ("includeHeadersInCheck", "include_headers_in_check"),
                           ("headersToUpstreamOnAllow", "headers_to_upstream_on_allow"),
                           ("headersToDownstreamOnDeny", "headers_to_downstream_on_deny"),
                           ("headersToDownstreamOnAllow", "headers_to_downstream_on_allow")):
        if key in body:
            fields[attribute] = _strings(body[key], f"{kind}.{key}")
    additional = body.get("includeAdditionalHeadersInCheck")
    if additional is not None:
        if not isinstance(additional, dict) or not all(isinstance(v, str) for v in additional.values()):
            raise ValueError(f"{kind}.includeAdditionalHeadersInCheck: expected a map of strings")
        fields["include_additional_headers_in_check"] = tuple(sorted(additional.items()))
    request_body = body.get("includeRequestBodyInCheck")
    if request_body is not None:
        if not isinstance(request_body, dict):
            raise ValueError(f"{kind}.includeRequestBodyInCheck: expected a map")
        fields["include_request_body_in_check"] = RequestBody(
            int(request_body.get("maxRequestBytes", 0)), bool(request_body.get("allowPartialMessage", False)),
            bool(request_body.get("packAsBytes", False)))
    return ExtensionProvider(**fields)


def providers_from(value: Any) -> tuple[ExtensionProvider, ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("expected a list of providers")
    out = []
    for index, entry in enumerate(value):
        try:
            out.append(provider_from(entry))
        except ValueError as exc:
            raise ValueError(f"[{index}].{exc}") from None
    return tuple(out)
