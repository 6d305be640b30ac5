"""Host names as Istio reads them: short-name expansion and wildcard matching."""

from __future__ import annotations

__all__ = ["DEFAULT_DOMAIN", "fqdn", "intersects", "kube_fqdn", "matches", "most_specific", "specificity"]

DEFAULT_DOMAIN = "cluster.local"


def fqdn(host: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    """Istio's ResolveShortnameToFQDN: `reviews` in `ns` is `reviews.ns.svc.<domain>`.

    Only names without a dot are expanded: `reviews.default` stays as written (a classic pitfall
    Istio keeps for compatibility), and `*` and IP addresses (which have dots or colons) are
    untouched.
    """
    if "." in host or ":" in host or host.startswith("*"):
        return host
    return f"{host}.{namespace}.svc.{domain}"


def kube_fqdn(name: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    return f"{name}.{namespace}.svc.{domain}"


def matches(pattern: str, host: str) -> bool:
    """Does `pattern` (exact or `*`/`*.suffix` wildcard) match the concrete or wildcard `host`?"""
    if pattern == host or pattern == "*":
        return True
    if pattern.startswith("*"):
        suffix = pattern[1:]
        if host.startswith("*"):
            return host[1:].endswith(suffix)
        return host.endswith(suffix) and len(host) > len(suffix)
    return False


def intersects(a: str, b: str) -> bool:
    """Do two host patterns share at least one concrete host?"""
    return matches(a, b) or matches(b, a)


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key: exact names before wildcards, longer wildcards before shorter ones."""
    if pattern.startswith("*"):
        return (1, -len(pattern))
    return (0, -len(pattern))


def most_specific(patterns: list[str], host: str) -> str | None:
    """The pattern that best matches `host` (exact beats `*.a.b` beats `*.b` beats `*`)."""
    candidates = [p for p in patterns if matches(p, host)]
    if not candidates:
        return None
    return min(candidates, key=specificity)
