"""The ext_authz filters of action CUSTOM, one configuration per extension provider
(security research §4.8).

A CUSTOM policy runs in two filters: an RBAC filter whose *shadow* rules are the CUSTOM rules
(it only records which rule matched, as dynamic metadata) and the ext_authz filter after it,
enabled by that metadata, so the external authorizer is asked only about requests a CUSTOM
rule selected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2, http_uri_pb2
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2 as http_ext_authz
from envoy.extensions.filters.network.ext_authz.v3 import ext_authz_pb2 as tcp_ext_authz
from envoy.type.matcher.v3 import metadata_pb2, string_pb2, value_pb2

from meshctl.generate import names
from meshctl.generate.protobuf import set_duration
from meshctl.config.kinds.mesh import ExtensionProvider, ExternalAuthorizer

__all__ = [
    "DEFAULT_TIMEOUT_NANOS",
    "ExtAuthz",
    "HostLookup",
    "MATCH_PREFIX",
    "SHADOW_POLICY_KEY",
    "SHADOW_STAT_PREFIX",
    "build",
    "enabled_by",
]

MATCH_PREFIX = "istio-ext-authz"
SHADOW_STAT_PREFIX = "istio_ext_authz_"
SHADOW_POLICY_KEY = SHADOW_STAT_PREFIX + "shadow_effective_policy_id"
DEFAULT_TIMEOUT_NANOS = 600 * 1_000_000_000

HostLookup = Callable[[str], Sequence[str]]
"""The namespaces that define a Service of this hostname."""


@dataclass(frozen=True, slots=True)
class ExtAuthz:
    """A provider's filters: HTTP always, TCP only for gRPC providers."""

    http: http_ext_authz.ExtAuthz
    tcp: tcp_ext_authz.ExtAuthz | None


def _cluster(service: str, port: int, lookup: HostLookup) -> tuple[str, str]:
    """(hostname, cluster) of a provider's `service`: `ns/host`, or a host defined in exactly one namespace."""
    namespace, slash, host = service.rpartition("/")
    found = lookup(host)
    if slash:
        if namespace not in found:
            raise ValueError(f"could not find service {host} in namespace {namespace}")
    elif len(found) != 1:
        raise ValueError(f"could not find service {host}" if not found else
                         f"service {host} is defined in namespaces {', '.join(sorted(found))}; write NAMESPACE/{host}")
    return host, names.outbound_cluster(port, host)


def _status(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) not in {s.value for s in HTTPStatus}:
        raise ValueError(f"unsupported statusOnError {text!r}")
    return int(text)


def _headers(values: Sequence[str]) -> string_pb2.ListStringMatcher | None:
    if not values:
        return None
    patterns = []
    for value in values:
        if value.startswith("*"):
            pattern = string_pb2.StringMatcher(suffix=value[1:], ignore_case=True)
        elif value.endswith("*"):
            pattern = string_pb2.StringMatcher(prefix=value[:-1], ignore_case=True)
        else:
            pattern = string_pb2.StringMatcher(exact=value, ignore_case=True)
        patterns.append(pattern)
    return string_pb2.ListStringMatcher(patterns=patterns)


def enabled_by(rbac_filter: str) -> metadata_pb2.MetadataMatcher:
    """ext_authz runs only when the shadow RBAC filter before it matched a CUSTOM rule."""
    matcher = metadata_pb2.MetadataMatcher(filter=rbac_filter)
    matcher.path.add(key=SHADOW_POLICY_KEY)
    matcher.value.CopyFrom(value_pb2.ValueMatcher(string_match=string_pb2.StringMatcher(prefix=MATCH_PREFIX)))
    return matcher


def _problems(authorizer: ExternalAuthorizer, http: bool) -> list[str]:
    problems = []
    if not 1 <= authorizer.port <= 65535:
        problems.append(f"port must be in the range [1, 65535], found: {authorizer.port}")
    if http:
        if authorizer.path_prefix and not authorizer.path_prefix.startswith("/"):
            problems.append(f"pathPrefix must begin with `/`, found: {authorizer.path_prefix!r}")
        for values in (authorizer.include_request_headers_in_check, authorizer.include_headers_in_check,
                       authorizer.headers_to_downstream_on_deny, authorizer.headers_to_downstream_on_allow,
                       authorizer.headers_to_upstream_on_allow):
            if "*" in values:
                problems.append('a single wildcard ("*") is not supported in header lists; use a prefix or suffix')
    return problems


def build(provider: ExtensionProvider, lookup: HostLookup) -> ExtAuthz:
    """The filters of one provider; ValueError saying why the provider cannot be used."""
    authorizer = provider.authorizer
    if authorizer is None:
        raise ValueError(f"extension provider {provider.name!r} is not an external authorizer")
    is_grpc = provider.envoy_ext_authz_grpc is not None
    problems = _problems(authorizer, http=not is_grpc)
    try:
        host, cluster = _cluster(authorizer.service, authorizer.port, lookup)
    except ValueError as exc:
        problems.append(str(exc))
        host = cluster = ""
    try:
        status = _status(authorizer.status_on_error)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError(f"extension provider {provider.name!r}: " + "; ".join(problems))
    http = http_ext_authz.ExtAuthz(failure_mode_allow=authorizer.fail_open,
                                   transport_api_version=config_source_pb2.V3,
                                   filter_enabled_metadata=enabled_by("envoy.filters.http.rbac"))
    if status is not None:
        http.status_on_error.code = status
    timeout = authorizer.timeout if authorizer.timeout is not None else DEFAULT_TIMEOUT_NANOS
    body = authorizer.include_request_body_in_check
    if body is not None:
        http.with_request_body.max_request_bytes = body.max_request_bytes
        http.with_request_body.allow_partial_message = body.allow_partial_message
        http.with_request_body.pack_as_bytes = body.pack_as_bytes
    if is_grpc:
        grpc = grpc_service_pb2.GrpcService()
        grpc.envoy_grpc.cluster_name = cluster
        # `|` is not valid in an :authority; Istio spells the cluster name with `_.` instead.
        grpc.envoy_grpc.authority = cluster.replace("|", "_.")
        set_duration(grpc.timeout, timeout)
        http.grpc_service.CopyFrom(grpc)
        tcp = tcp_ext_authz.ExtAuthz(stat_prefix="tcp.", failure_mode_allow=authorizer.fail_open,
                                     transport_api_version=config_source_pb2.V3, grpc_service=grpc,
                                     filter_enabled_metadata=enabled_by("envoy.filters.network.rbac"))
        return ExtAuthz(http, tcp)
    http.clear_route_cache = authorizer.clear_route_cache
    service = http.http_service
    service.path_prefix = authorizer.path_prefix
    service.server_uri.CopyFrom(http_uri_pb2.HttpUri(uri=f"http://{host}", cluster=cluster))
    set_duration(service.server_uri.timeout, timeout)
    allowed = _headers(authorizer.include_request_headers_in_check) or _headers(authorizer.include_headers_in_check)
    if allowed is not None or authorizer.include_additional_headers_in_check:
        request = service.authorization_request
        if allowed is not None:
            request.allowed_headers.CopyFrom(allowed)
        for key, value in sorted(authorizer.include_additional_headers_in_check.items()):
            request.headers_to_add.append(base_pb2.HeaderValue(key=key, value=value))
    if authorizer.headers_to_upstream_on_allow or authorizer.headers_to_downstream_on_deny or \
            authorizer.headers_to_downstream_on_allow:
        response = service.authorization_response
        for target, values in ((response.allowed_upstream_headers, authorizer.headers_to_upstream_on_allow),
                               (response.allowed_client_headers, authorizer.headers_to_downstream_on_deny),
                               (response.allowed_client_headers_on_success, authorizer.headers_to_downstream_on_allow)):
            matcher = _headers(values)
            if matcher is not None:
                target.CopyFrom(matcher)
    return ExtAuthz(http, None)
