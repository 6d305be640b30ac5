"""Parsing and checking of the scalar formats Istio resources use: durations, regexes, hosts, labels.

The validator and the translator both need these (one to refuse bad values, the other to turn good
ones into Envoy fields), so they live in one place.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import warnings
from decimal import Decimal, InvalidOperation

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_duration(text: str) -> int | None:
    """Nanoseconds of a Go (`1m30s`, `100ms`) or protobuf JSON (`1.5s`) duration; None if invalid."""
    if not isinstance(text, str) or not text:
        return None
    body = text[1:] if text[0] in "+-" else text
    sign = -1 if text[0] == "-" else 1
    if body == "0":
        return 0
    pos = 0
    total = Decimal(0)
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if not match:
            return None
        try:
            total += Decimal(match.group(1)) * _UNIT_NANOS[match.group(2)]
        except InvalidOperation:
            return None
        pos = match.end()
    if pos == 0:
        return None
    return sign * int(total)


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


_RE2_UNSUPPORTED = re.compile(r"\(\?[=!<]|\(\?<[=!]|\\[1-9]|\(\?P=|\(\?\(|[*+?}]\+")


def regex_problem(pattern: str) -> str | None:
    """Why Envoy's RE2 would refuse `pattern`, or None when it is fine."""
    if _RE2_UNSUPPORTED.search(pattern):
        return f"invalid regex {pattern!r}: lookaround, backreferences and possessive quantifiers are not supported by RE2"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as exc:
        return f"invalid regex {pattern!r}: {exc}"
    except (RecursionError, OverflowError, ValueError):
        return f"invalid regex {pattern!r}"
    return None


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", re.IGNORECASE)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def is_ip(text: str) -> bool:
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
            return f"domain label {label!r} is longer than 63 characters"
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
