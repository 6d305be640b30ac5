"""Running iptables: which binary, what is installed now, and loading a payload.

The binary is chosen as istio-iptables chooses it: `FORCE_IPTABLES_BINARY` (`legacy`, `nft`)
if set; else the legacy backend if it already holds rules in this namespace; else the nft
backend if it works; else plain `iptables`. The same variant's `-save` and `-restore` go with
it. Every failure names what is missing, so the CLI can say it without a traceback.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from meshctl.capture.rules import BUILTIN_CHAINS, Family, Rule, owns_chain
from meshctl.errors import MeshctlError

__all__ = ["INSTALL_HINT", "Iptables", "IptablesError", "State", "VARIANTS", "find_iptables", "parse_save"]

VARIANTS = ("legacy", "nft")
INSTALL_HINT = "install the iptables package (Debian: apt-get install iptables)"


class IptablesError(MeshctlError):
    """iptables is missing, not permitted, or refused the rules."""


@dataclass(frozen=True, slots=True)
class Iptables:
    """One family's iptables, iptables-save and iptables-restore (of one variant)."""

    family: Family
    binary: str
    save_binary: str
    restore_binary: str
    legacy: bool = False

    @property
    def _wait(self) -> tuple[str, ...]:
        # The legacy backend serializes writers through a lock file; nft needs no lock.
        return ("--wait=30",) if self.legacy else ()

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run([self.binary, *self._wait, *args])

    def save(self) -> str:
        done = _run([self.save_binary])
        if done.returncode != 0:
            raise IptablesError(f"{self.save_binary} failed: {_reason(done)}")
        return done.stdout

    def restore(self, payload: str) -> None:
        """Load a payload atomically (`--noflush`: other rules stay)."""
        done = _run([self.restore_binary, *self._wait, "--noflush"], payload)
        if done.returncode != 0:
            raise IptablesError(f"{self.restore_binary} refused the rules: {_reason(done)}")

    def has(self, rule: Rule) -> bool:
        """Whether the kernel holds this rule (`iptables -C`), however iptables-save prints it."""
        return self.run(*rule.args("-C")).returncode == 0

    def state(self) -> State:
        return parse_save(self.save())


def _run(argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise IptablesError(f"{argv[0]} not found: {INSTALL_HINT}") from None
    except PermissionError:
        raise IptablesError(f"{argv[0]} cannot be run: permission denied") from None


def _reason(done: subprocess.CompletedProcess[str]) -> str:
    text = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
    if "Permission denied" in text or "you must be root" in text:
        text += " (changing iptables rules needs root, or CAP_NET_ADMIN and CAP_NET_RAW)"
    return text


def _variant(family: Family, suffix: str) -> Iptables | None:
    base = family.value + suffix
    paths = [shutil.which(base + part) for part in ("", "-save", "-restore")]
    if any(path is None for path in paths):
        return None
    binary, save, restore = (str(path) for path in paths)
    return Iptables(family, binary, save, restore, legacy=suffix == "-legacy")


def find_iptables(family: Family, force: str = "") -> Iptables | None:
    """This family's iptables, chosen as istio-iptables chooses; None when there is none."""
    if force:
        if force not in VARIANTS:
            raise IptablesError(f"FORCE_IPTABLES_BINARY / --force-iptables-binary must be legacy or nft, not {force!r}")
        forced = _variant(family, f"-{force}")
        if forced is None:
            raise IptablesError(f"{family.value}-{force} (with -save and -restore) not found: {INSTALL_HINT}")
        return forced
    legacy = _variant(family, "-legacy")
    if legacy is not None and _holds_rules(legacy):
        return legacy
    nft = _variant(family, "-nft")
    if nft is not None and _works(nft):
        return nft
    return _variant(family, "")


def _holds_rules(tool: Iptables) -> bool:
    done = _run([tool.save_binary])
    return done.returncode == 0 and any(line.startswith("-A ") for line in done.stdout.splitlines())


def _works(tool: Iptables) -> bool:
    """The backend can change rules here: add and remove a rule that matches nothing."""
    probe = Rule("filter", "INPUT", ("-p", "255", "-j", "ACCEPT"))
    if tool.run(*probe.args("-A")).returncode != 0:
        return False
    tool.run(*probe.args("-D"))
    return True


@dataclass(slots=True)
class State:
    """The Istio part of iptables-save's output: ISTIO_* chains with their rules, and the rules
    of built-in chains that jump to them."""

    tables: set[str] = field(default_factory=set)
    chains: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    jumps: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.chains and not self.jumps


def parse_save(text: str) -> State:
    """Read iptables-save output (`*table`, `:CHAIN POLICY [counters]`, `-A CHAIN …`)."""
    state = State()
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            state.tables.add(table)
        elif line.startswith(":"):
            chain = line[1:].split()[0]
            if owns_chain(chain):
                state.chains.setdefault((table, chain), [])
        elif line.startswith("-A "):
            words = line.split()
            chain = words[1]
            if owns_chain(chain):
                state.chains.setdefault((table, chain), []).append(line)
            elif chain in BUILTIN_CHAINS and _jumps_to_istio(words):
                state.jumps.append((table, line))
    return state


def _jumps_to_istio(words: list[str]) -> bool:
    for index, word in enumerate(words[:-1]):
        if word in ("-j", "--jump", "-g", "--goto"):
            return owns_chain(words[index + 1].strip("'\""))
    return False
