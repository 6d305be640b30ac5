"""Trust-domain aliases in authorization principals (security research §4.6).

A mesh that renamed its trust domain (or merged with another) lists the old names as
`trustDomainAliases`; a policy naming `cluster.local/ns/foo/sa/bar` must then also admit the
same workload under every alias. `cluster.local` always stands for the local trust domain.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["LOCAL", "domains_with_aliases", "with_aliases"]

LOCAL = "cluster.local"


def _wildcard_match(value: str, pattern: str) -> bool:
    if pattern.endswith("*") and value.startswith(pattern[:-1]):
        return True
    return pattern.startswith("*") and value.endswith(pattern[1:])


def _matches(domain: str, bundle: Sequence[str]) -> bool:
    """`domain` against the bundle, either side possibly a `*` prefix or suffix pattern."""
    return any(domain == entry or entry == "*" or _wildcard_match(domain, entry) or _wildcard_match(entry, domain)
               for entry in bundle)


def with_aliases(principals: Sequence[str], bundle: Sequence[str]) -> list[str]:
    """Each `TD/ns/NS/sa/SA` principal whose trust domain is in the bundle (or is
    `cluster.local`), once per bundle entry; other values as they are. A principal whose own
    trust domain is a `*suffix` pattern matching an entry stays as written for that entry."""
    out: list[str] = []
    for principal in principals:
        parts = principal.split("/")
        if len(parts) != 5 or parts[0] == "*":
            out.append(principal)
            continue
        domain = parts[0]
        if not (_matches(domain, bundle) or domain == LOCAL):
            out.append(principal)
            continue
        expanded: list[str] = []
        for entry in bundle:
            kept = domain.startswith("*") and entry.endswith(domain[1:])
            rewritten = principal if kept else "/".join([entry, *parts[1:]])
            if rewritten not in expanded:
                expanded.append(rewritten)
        out.extend(expanded)
    return out


def domains_with_aliases(domains: Sequence[str], bundle: Sequence[str]) -> list[str]:
    """`source.trustDomain` values: one in the bundle stands for the whole bundle."""
    out: list[str] = []
    for domain in domains:
        for item in (bundle if domain in bundle else [domain]):
            if item not in out:
                out.append(item)
    return out
