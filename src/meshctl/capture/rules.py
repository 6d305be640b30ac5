"""iptables rules as data, and the `iptables-restore` payload istio-iptables feeds the kernel.

A rule is kept as the words Istio writes (`-p tcp --dport 15008 -j RETURN`), never parsed: the
payload must match Istio's byte for byte, and `iptables -C`/`-D` take the same words. What the
kernel prints back (`iptables-save`) is normalized differently (`-m tcp` added, options moved),
so state is compared by asking iptables (`-C`), not by text.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["BUILTIN_CHAINS", "Family", "ISTIO_PREFIX", "Rule", "Ruleset", "chains", "owns_chain", "restore_payload"]

BUILTIN_CHAINS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})
ISTIO_PREFIX = "ISTIO_"


class Family(enum.Enum):
    """An address family, named by the iptables binary that manages its rules."""

    IPV4 = "iptables"
    IPV6 = "ip6tables"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: appended to its chain, or inserted at `position` (1 = first)."""

    table: str
    chain: str
    spec: tuple[str, ...]
    position: int | None = None

    def __str__(self) -> str:
        where = f"-I {self.chain} {self.position}" if self.position is not None else f"-A {self.chain}"
        return " ".join((where, *self.spec))

    @property
    def target(self) -> str | None:
        """The chain or target of a rule ending in `-j TARGET`; None when options follow it."""
        if len(self.spec) >= 2 and self.spec[-2] == "-j":
            return self.spec[-1]
        return None

    def args(self, operation: str) -> tuple[str, ...]:
        """Arguments for `iptables` checking (`-C`) or deleting (`-D`) this rule."""
        return ("-t", self.table, operation, self.chain, *self.spec)


def owns_chain(chain: str) -> bool:
    """Chains istio-iptables creates (and may flush and delete), as opposed to the kernel's."""
    return chain.startswith(ISTIO_PREFIX)


def chains(rules: Iterable[Rule]) -> list[tuple[str, str]]:
    """(table, chain) of every non-built-in chain the rules use, in order of first use: chains
    that hold rules first, then jump targets that hold none (istio-iptables' `-N` order)."""
    seen: dict[tuple[str, str], None] = {}
    rules = list(rules)
    for rule in rules:
        if rule.chain not in BUILTIN_CHAINS:
            seen.setdefault((rule.table, rule.chain), None)
    for rule in rules:
        if rule.target is not None and owns_chain(rule.target):
            seen.setdefault((rule.table, rule.target), None)
    return list(seen)


def restore_payload(rules: Sequence[Rule]) -> str:
    """The input of `iptables-restore --noflush`, as istio-iptables writes it.

    Tables in name order, each with its `-N` lines and then its rules in emission order; tables
    without rules are left out, so no rules give an empty payload.
    """
    declared = chains(rules)
    lines: list[str] = []
    for table in sorted({rule.table for rule in rules}):
        lines.append(f"* {table}")
        lines.extend(f"-N {chain}" for owner, chain in declared if owner == table)
        lines.extend(str(rule) for rule in rules if rule.table == table)
        lines.append("COMMIT")
    return "".join(line + "\n" for line in lines)


@dataclass(frozen=True, slots=True)
class Ruleset:
    """The rules of both families; IPv6 is empty unless the pod has IPv6."""

    ipv4: tuple[Rule, ...]
    ipv6: tuple[Rule, ...]

    def of(self, family: Family) -> tuple[Rule, ...]:
        return self.ipv4 if family is Family.IPV4 else self.ipv6

    def payloads(self) -> str:
        """Both families' payloads one after the other, as `--dry-run` prints them (and as
        Istio's capture goldens hold them)."""
        return restore_payload(self.ipv4) + restore_payload(self.ipv6)
