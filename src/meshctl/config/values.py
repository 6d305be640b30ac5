"""Parsing and checking of the scalar formats Istio resources use: durations, regexes, hosts, labels.

The validator and the translator both need these (one to refuse bad values, the other to turn good
ones into Envoy fields), so they live in one place.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Any

__all__ = [
    "MAX_DURATION_NANOS",
    "MAX_DURATION_TEXT",
    "duration_nanos",
    "fqdn_problem",
    "is_cidr",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_ip",
    "label_key_problem",
    "label_value_problem",
    "parse_duration",
    "parse_proto_bytes",
    "regex_problem",
    "shown",
    "split_nanos",
]

_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|ms|s|m|h)")
_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
MAX_DURATION_NANOS = 9_223_372_035_999_999_999
"""The longest duration meshctl accepts, 2562047h47m15.999999999s (about 292 years).

Everything a duration passes through stops near here. Envoy refuses any Duration of 9,223,372,036
seconds or more (it converts durations to 64-bit nanoseconds), and Kubernetes checks Istio's
duration fields with CEL's `duration()`, which parses into Go's 64-bit nanosecond `time.Duration`
(2562047h47m16.854775807s at most). A protobuf Duration itself could hold 315,576,000,000 s.
"""
MAX_DURATION_TEXT = "2562047h47m15.999999999s"
_FRACTION_DIGITS = 18  # finer than 1e-6 ns even in hours; more digits cannot change the result
_MAX_PARTS = 100  # Go sets no limit; nobody writes `1s` a hundred times, and each part costs time
_SATURATED = MAX_DURATION_NANOS + 1


def duration_nanos(text: str) -> int | None:
    """Nanoseconds of a Go (`1m30s`, `100ms`) or protobuf JSON (`1.5s`) duration, None if the
    text is not a duration. Beyond the range of `MAX_DURATION_NANOS` the result saturates just
    past it: a duration with a million digits is refused as out of range without ever being
    computed (or raising on the way)."""
    if not isinstance(text, str) or not text:
        return None
    body = text[1:] if text[0] in "+-" else text
    sign = -1 if text[0] == "-" else 1
    if body == "0":
        return 0
    scale: int = 10**_FRACTION_DIGITS
    ceiling = _SATURATED * scale
    pos = total = parts = 0
    while pos < len(body) or parts == 0:
        parts += 1
        match = _DURATION_PART.match(body, pos)
        if match is None or parts > _MAX_PARTS:
            return None
        whole, fraction, unit = match.groups()
        if not (whole or fraction):
            return None
        pos = match.end()
        whole = whole.lstrip("0")
        if len(whole) > 20:  # more than 10^20 of any unit is out of range whatever follows
            return sign * _SATURATED
        digits = (fraction or "")[:_FRACTION_DIGITS].ljust(_FRACTION_DIGITS, "0")
        total += (int(whole or "0") * scale + int(digits)) * _UNIT_NANOS[unit]
        if total >= ceiling:
            return sign * _SATURATED
    return sign * (total // scale)


def parse_duration(text: str) -> int | None:
    """Nanoseconds of a duration within +-`MAX_DURATION_NANOS`; None if invalid or out of range."""
    nanos = duration_nanos(text)
    if nanos is None or abs(nanos) > MAX_DURATION_NANOS:
        return None
    return nanos


def shown(value: Any, limit: int = 64) -> str:
    """`value` as a message quotes it (`repr`), shortened in the middle when long.

    Messages echo what the user wrote, and what the user wrote may be a megabyte: a line of
    output must stay a line. Huge integers are described rather than converted to text (which
    Python refuses beyond 4,300 digits).
    """
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int) and value.bit_length() > 200:
        digits = len(str(abs(value))) if value.bit_length() < 14_000 else int(value.bit_length() * 0.30103) + 1
        return f"a {digits:,}-digit number"
    if isinstance(value, str) and len(value) > limit:
        half = limit // 2
        return f"{value[:half] + '…' + value[-half:]!r} ({len(value):,} characters)"
    return repr(value)


def parse_proto_bytes(text: str) -> bytes | None:
    """The bytes of a protobuf JSON `bytes` field, None if invalid. Like protobuf's JSON parser
    this takes standard and URL-safe base64, padded or not, so the validator accepts exactly
    what the translator can decode."""
    standard = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def split_nanos(nanos: int) -> tuple[int, int]:
    """(seconds, nanos) as google.protobuf.Duration wants them."""
    seconds, rest = divmod(abs(nanos), 1_000_000_000)
    if nanos < 0:
        return -seconds, -rest
    return seconds, rest


def regex_problem(pattern: str) -> str | None:
    """Why RE2, the engine of Envoy (and, in Go, of Istio's validation), refuses `pattern`, or
    None when it compiles: `\\pL` is fine, `a{1001}` and lookaround are not."""
    import re2

    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"invalid regex {shown(pattern)}: {reason}"
    return None


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", re.IGNORECASE)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_IPV4 = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")


def is_ip(text: str) -> bool:
    """An IPv4 or IPv6 address as Python (and Go) parse one. The dotted quads every pod and
    endpoint carries are recognised by a pattern first: parsing thousands of them in a
    cluster's listing costs more than the rest of their validation. The pattern is exactly the
    IPv4 spelling Python accepts, so anything else without a colon (every host name) is no
    address, and never pays for a parse that raises."""
    if _PLAIN_IPV4.fullmatch(text):
        return True
    if ":" not in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text or is_ip(text)


def fqdn_problem(host: str, *, allow_wildcard: bool = True) -> str | None:
    """Istio's ValidateWildcardDomain: an optional leading `*` label, then DNS labels."""
    if host == "*":
        return None if allow_wildcard else "wildcard host '*' is not allowed here"
    if len(host) > 255:
        return "domain name too long (max 255)"
    labels = host.split(".")
    if labels[0] == "*" or labels[0].startswith("*"):
        if not allow_wildcard:
            return f"wildcard host {host!r} is not allowed here"
        if labels[0] != "*":
            head = labels[0][1:]
            if head and not _DNS_LABEL.match(head):
                return f"invalid wildcard label {labels[0]!r}"
        labels = labels[1:]
    if labels and labels[-1] == "":
        labels = labels[:-1]
    for label in labels:
        if not label:
            return f"domain name {host!r} has an empty label"
        if len(label) > 63:
            return f"domain label {shown(label)} is longer than 63 characters"
        if not _DNS_LABEL.match(label):
            return f"{host!r} is not a valid DNS name (label {label!r})"
    return None


def is_dns1123_label(text: str) -> bool:
    return len(text) <= 63 and bool(_DNS1123_LABEL.match(text))


def is_dns1123_subdomain(text: str) -> bool:
    return len(text) <= 253 and bool(_DNS1123_SUBDOMAIN.match(text))


def label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and not is_dns1123_subdomain(prefix):
        return f"invalid label key {key!r}: prefix must be a DNS subdomain"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return f"invalid label key {key!r}"
    return None


def label_value_problem(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return f"invalid label value {value!r}"
    return None
