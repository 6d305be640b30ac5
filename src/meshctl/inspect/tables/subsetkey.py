"""Istio cluster names (`direction|port|subset|fqdn`) split and ordered the way istioctl does."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

from meshctl.inspect.gosort import sort_slice
from meshctl.inspect.gostd import atoi

__all__ = ["SubsetKey", "is_subset_key", "parse_subset_key", "sort_by_cluster_name", "sort_key"]

T = TypeVar("T")

_SRV_PREFIXES = ("outbound_", "inbound_")


class SubsetKey(NamedTuple):
    direction: str
    subset: str
    fqdn: str
    port: int


def is_subset_key(name: str) -> bool:
    """istioctl's test before splitting a name: at least four `|`-separated parts."""
    return name.count("|") >= 3


def parse_subset_key(name: str) -> SubsetKey:
    """Istio's `model.ParseSubsetKey`: fields it cannot find stay empty (port 0).

    Names in the DNS SRV form (`outbound_.80_.v1_.host`) are split on `_.`; a fourth part that
    still holds the separator leaves the host empty.
    """
    separator = "_." if name.startswith(_SRV_PREFIXES) else "|"
    parts = name.split(separator, 3)
    direction = parts[0] if len(parts) > 1 else ""
    port = atoi(parts[1])[0] if len(parts) > 2 else 0
    subset = parts[2] if len(parts) > 3 else ""
    fqdn = parts[3] if len(parts) > 3 and separator not in parts[3] else ""
    return SubsetKey(direction, subset, fqdn, port)


def sort_key(name: str) -> SubsetKey:
    """istioctl's `safelyParseSubsetKey`: other names sort by the whole name, port 0."""
    return parse_subset_key(name) if is_subset_key(name) else SubsetKey("", "", name, 0)


def sort_by_cluster_name(items: list[T], name_of: Callable[[T], str]) -> None:
    """Sort in place by FQDN, then subset, then port, then direction (clusters and EDS tables),
    with Go's sort.Slice; each name is parsed once, not at every comparison."""
    keyed = [(_order(name_of(item)), item) for item in items]
    sort_slice(keyed, lambda left, right: left[0] < right[0])
    items[:] = [item for _, item in keyed]


def _order(name: str) -> tuple[str, str, int, str]:
    key = sort_key(name)
    return key.fqdn, key.subset, key.port, key.direction
