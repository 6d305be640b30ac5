"""Installing the rules as istio-iptables does: verify what is there, then apply, reconcile or
leave alone; and `--cleanup-only`.

What is there is compared with the plan like `VerifyIptablesState`: rules from an earlier run
("residue") that hold exactly the planned ISTIO_* chains, rule counts and rules (`iptables -C`)
are left alone, so running twice changes nothing; differing ones are replaced with `--reconcile`
(behind temporary DROP guardrails, so no packet slips through half-installed rules) and make
the load fail otherwise, as in istio-iptables. Each family's payload loads atomically.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from meshctl.capture import routes
from meshctl.capture.config import CaptureConfig
from meshctl.capture.iptables import INSTALL_HINT, Iptables, IptablesError, State, find_iptables
from meshctl.capture.rules import BUILTIN_CHAINS, Family, Rule, Ruleset, chains, owns_chain, restore_payload

__all__ = ["CAP_NET_ADMIN", "Options", "Outcome", "cleanup", "install", "require_privileges"]

CAP_NET_ADMIN = 12
_GUARDRAILS = tuple(Rule("filter", chain, ("-p", protocol, "-j", "DROP"))
                    for chain in ("INPUT", "FORWARD", "OUTPUT") for protocol in ("tcp", "udp"))


class Outcome(enum.Enum):
    APPLIED = "applied"
    UNCHANGED = "unchanged: the rules of an earlier run match"
    RECONCILED = "reconciled: the rules of an earlier run were replaced"
    CLEANED = "removed"


@dataclass(frozen=True, slots=True)
class Options:
    """How to install (the rule-independent flags)."""

    reconcile: bool = False
    cleanup_only: bool = False
    force_apply: bool = False
    force_binary: str = ""


def install(ruleset: Ruleset, config: CaptureConfig, options: Options) -> Outcome:
    """Bring the kernel's rules (and TPROXY's routes) to `ruleset`, or remove them."""
    tools = _tools(config, options.force_binary)
    require_privileges()
    states = {family: tool.state() for family, tool in tools.items()}
    if options.cleanup_only:
        for family, tool in tools.items():
            cleanup(tool, ruleset.of(family), states[family])
        return Outcome.CLEANED
    residue = any(ruleset.of(family) and not states[family].empty for family in tools)
    delta = not residue or any(_differs(tool, ruleset.of(family), states[family]) for family, tool in tools.items()
                               if ruleset.of(family))
    outcome = Outcome.APPLIED
    if residue and not delta and not options.force_apply:
        outcome = Outcome.UNCHANGED
    elif residue and delta and options.reconcile:
        with _guardrails(list(tools.values())):
            for family, tool in tools.items():
                cleanup(tool, ruleset.of(family), states[family])
            _load(tools, ruleset)
        outcome = Outcome.RECONCILED
    else:
        try:
            _load(tools, ruleset)
        except IptablesError as exc:
            if not residue:
                raise
            raise IptablesError(f"{exc}\nrules of an earlier run are in the way: run again with --reconcile to "
                                "replace them, or with --cleanup-only to remove them") from None
    routes.configure(config)
    return outcome


def require_privileges() -> None:
    """Changing iptables needs CAP_NET_ADMIN; say so before iptables says it less clearly."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            effective = next(line.split()[1] for line in status if line.startswith("CapEff:"))
    except (OSError, StopIteration):
        return
    if not int(effective, 16) >> CAP_NET_ADMIN & 1:
        raise IptablesError("changing iptables rules needs root (or CAP_NET_ADMIN and CAP_NET_RAW): run it with "
                            "sudo or in the pod's init container, or add --dry-run to print the rules")


def _tools(config: CaptureConfig, force: str) -> dict[Family, Iptables]:
    """iptables for IPv4 (required) and IPv6 (required when the pod has IPv6)."""
    tools: dict[Family, Iptables] = {}
    for family in Family:
        tool = find_iptables(family, force)
        if tool is None and (family is Family.IPV4 or config.enable_ipv6):
            raise IptablesError(f"{family.value} (with {family.value}-save and {family.value}-restore) not found: "
                                f"{INSTALL_HINT}")
        if tool is not None:
            tools[family] = tool
    return tools


def _load(tools: Mapping[Family, Iptables], ruleset: Ruleset) -> None:
    for family, tool in tools.items():
        if ruleset.of(family):
            tool.restore(restore_payload(ruleset.of(family)))


def _differs(tool: Iptables, planned: tuple[Rule, ...], state: State) -> bool:
    """The kernel's Istio chains are not the planned ones: a table or chain missing, an extra
    ISTIO_* chain, another number of rules in one, or a planned rule `iptables -C` cannot find.
    Rule order is not compared (istio-iptables does not either)."""
    wanted = set(chains(planned))
    if any(table not in state.tables for table in {rule.table for rule in planned}):
        return True
    counts = Counter((rule.table, rule.chain) for rule in planned if owns_chain(rule.chain))
    if set(state.chains) != wanted:
        return True
    if any(len(state.chains[key]) != counts.get(key, 0) for key in wanted):
        return True
    return not all(tool.has(rule) for rule in planned)


def cleanup(tool: Iptables, planned: tuple[Rule, ...], state: State) -> None:
    """Remove Istio's rules and chains from one family: every built-in chain rule jumping to an
    ISTIO_* chain and every ISTIO_* chain there is (not only the planned ones, so leftovers of
    other flags go too), then the planned rules of built-in chains that jump elsewhere (marks,
    interface exclusions), each deleted if present."""
    payload: list[str] = []
    for table in sorted({table for table, _ in state.chains} | {table for table, _ in state.jumps}):
        payload.append(f"* {table}")
        payload.extend("-D" + line[2:] for owner, line in state.jumps if owner == table)
        ours = [chain for owner, chain in state.chains if owner == table]
        payload.extend(f"-F {chain}" for chain in ours)
        payload.extend(f"-X {chain}" for chain in ours)
        payload.append("COMMIT")
    if payload:
        tool.restore("".join(line + "\n" for line in payload))
    for rule in reversed(planned):
        if rule.chain in BUILTIN_CHAINS and not (rule.target and owns_chain(rule.target)):
            tool.run(*rule.args("-D"))


@contextmanager
def _guardrails(tools: list[Iptables]) -> Iterator[None]:
    """Drop all TCP and UDP while the old rules go and the new ones come (istio-iptables'
    guardrails), removing the drops whatever happens."""
    for tool in tools:
        for rule in _GUARDRAILS:
            tool.run("-t", rule.table, "-I", rule.chain, "1", *rule.spec)
    try:
        yield
    finally:
        for tool in tools:
            for rule in _GUARDRAILS:
                tool.run(*rule.args("-D"))
