"""The Envoy matchers Istio's authorization values become (security research §4.5).

One spelling rule runs through them: `*` alone matches any non-empty value (a `.+` regex, or
"present" for headers), a leading `*` is a suffix, a trailing `*` a prefix, anything else is
exact. Principals and namespaces are matched against the peer's SPIFFE URI, so they carry its
`spiffe://` prefix or become regexes over it; every regex quotes the literal parts as Go's
`regexp.QuoteMeta` does, the way istiod writes them.
"""

from __future__ import annotations

import ipaddress

from envoy.config.core.v3 import address_pb2, extension_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_components_pb2 as route_pb2
from envoy.extensions.path.match.uri_template.v3 import uri_template_match_pb2
from envoy.type.matcher.v3 import metadata_pb2, path_pb2, regex_pb2, string_pb2, value_pb2

from meshctl.generate.protobuf import typed

__all__ = [
    "GenerationError",
    "JWT_FILTER",
    "JWT_PAYLOAD",
    "SPIFFE",
    "URI_TEMPLATE",
    "any_of_values",
    "authenticated",
    "cidr",
    "header",
    "list_or_scalar",
    "metadata",
    "namespace",
    "path",
    "port",
    "principal_name",
    "quote",
    "regex",
    "service_account",
    "string",
    "string_value",
    "trust_domain",
]

SPIFFE = "spiffe://"
JWT_FILTER = "envoy.filters.http.jwt_authn"
JWT_PAYLOAD = "payload"
URI_TEMPLATE = "uri-template"
_GO_META = frozenset("\\.+*?()|[]{}^$")


class GenerationError(ValueError):
    """A value that cannot become a matcher (a bad CIDR or port), or an HTTP-only attribute on
    a TCP chain. Istio drops the whole rule for ALLOW, only the value for DENY/AUDIT/CUSTOM."""


def quote(text: str) -> str:
    """Go's regexp.QuoteMeta: a backslash before each regex metacharacter."""
    return "".join("\\" + char if char in _GO_META else char for char in text)


def regex(pattern: str) -> string_pb2.StringMatcher:
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=pattern))


def string(value: str, prefix: str = "") -> string_pb2.StringMatcher:
    """The generic spelling rule; `prefix` goes before literal values (`*x` with a prefix needs a
    regex, since a StringMatcher cannot be both prefix and suffix)."""
    if value == "*":
        return regex(".+")
    if value.startswith("*"):
        if not prefix:
            return string_pb2.StringMatcher(suffix=value[1:])
        return regex(prefix + ".*" + quote(value[1:]))
    if value.endswith("*"):
        return string_pb2.StringMatcher(prefix=prefix + value[:-1])
    return string_pb2.StringMatcher(exact=prefix + value)


def principal_name(value: str) -> rbac_pb2.Principal:
    """A peer principal (`ns/NS/sa/SA` under a trust domain) against the certificate's URI SAN."""
    return authenticated(string(value, SPIFFE))


def authenticated(matcher: string_pb2.StringMatcher) -> rbac_pb2.Principal:
    principal = rbac_pb2.Principal()
    principal.authenticated.principal_name.CopyFrom(matcher)
    return principal


def namespace(value: str) -> rbac_pb2.Principal:
    """Any identity of namespace `value` (each `*` inside it spans any characters)."""
    inner = ".*".join(quote(part) for part in value.split("*"))
    return authenticated(regex(f".*/ns/{inner}/.*"))


def service_account(value: str, policy_namespace: str) -> rbac_pb2.Principal:
    """`sa` or `ns/sa` (the policy's namespace when omitted), under any trust domain."""
    namespace_part, _, account = value.rpartition("/")
    namespace_part = namespace_part or policy_namespace
    return authenticated(regex(f"spiffe://.+/ns/{quote(namespace_part)}/(.+/|)sa/{quote(account)}(/.+)?"))


def trust_domain(value: str) -> rbac_pb2.Principal:
    if value == "*":
        return authenticated(string_pb2.StringMatcher(prefix=SPIFFE))
    if "*" not in value:
        return authenticated(string_pb2.StringMatcher(prefix=f"{SPIFFE}{value}/"))
    before, _, after = value.partition("*")
    return authenticated(regex(f"spiffe://{quote(before)}[^/]*{quote(after)}/.*"))


def cidr(value: str) -> address_pb2.CidrRange:
    """An IP (a /32 or /128) or a CIDR block, its address kept as written."""
    address, slash, length = value.partition("/")
    try:
        ip = ipaddress.ip_address(address)
        bits = int(length) if slash else ip.max_prefixlen
    except ValueError as exc:
        raise GenerationError(f"invalid IP address or CIDR block {value!r}") from exc
    if not 0 <= bits <= ip.max_prefixlen or (slash and not length.isdigit()):
        raise GenerationError(f"invalid CIDR block {value!r}")
    range_ = address_pb2.CidrRange(address_prefix=str(ip))
    range_.prefix_len.value = bits
    return range_


def port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise GenerationError(f"invalid port {value!r}")
    return int(value)


def header(name: str, value: str, *, ignore_case: bool = False) -> route_pb2.HeaderMatcher:
    """A header with the spelling rule; `*` means the header is present."""
    matcher = route_pb2.HeaderMatcher(name=name)
    if value == "*":
        matcher.present_match = True
        return matcher
    matcher.string_match.CopyFrom(string(value))
    if ignore_case:
        matcher.string_match.ignore_case = True
    return matcher


def path(value: str) -> rbac_pb2.Permission:
    """A request path; `{*}` (one segment) and `{**}` (the rest) make it a URI template."""
    permission = rbac_pb2.Permission()
    if "{*}" in value or "{**}" in value:
        segments = ["*" if s == "{*}" else "**" if s == "{**}" else s for s in value.split("/")]
        config = uri_template_match_pb2.UriTemplateMatchConfig(path_template="/".join(segments))
        permission.uri_template.CopyFrom(extension_pb2.TypedExtensionConfig(name=URI_TEMPLATE, typed_config=typed(config)))
        return permission
    permission.url_path.CopyFrom(path_pb2.PathMatcher(path=string(value)))
    return permission


def metadata(filter_name: str, keys: list[str], value: value_pb2.ValueMatcher) -> metadata_pb2.MetadataMatcher:
    matcher = metadata_pb2.MetadataMatcher(filter=filter_name, value=value)
    for key in keys:
        matcher.path.add(key=key)
    return matcher


def string_value(value: str) -> value_pb2.ValueMatcher:
    return value_pb2.ValueMatcher(string_match=string(value))


def any_of_values(values: list[str]) -> value_pb2.ValueMatcher:
    """One value's matcher, or an or_match of them."""
    if len(values) == 1:
        return string_value(values[0])
    matcher = value_pb2.ValueMatcher()
    matcher.or_match.value_matchers.extend(string_value(v) for v in values)
    return matcher


def list_or_scalar(values: list[str]) -> value_pb2.ValueMatcher:
    """A JWT claim that may be a list (any element matches) or a plain string."""
    inner = any_of_values(values)
    matcher = value_pb2.ValueMatcher()
    as_list = matcher.or_match.value_matchers.add()
    as_list.list_match.one_of.CopyFrom(inner)
    matcher.or_match.value_matchers.append(inner)
    return matcher
