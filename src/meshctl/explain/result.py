"""What `meshctl explain` answers: the steps a request takes through one proxy, each with the
config that decided it, the candidates it passed over and why, and where an outcome ends.

A request's path forks only where Envoy's choice is random or depends on what the config cannot
show: weighted clusters fork by weight, a route that matches a fraction of requests or depends
on a JWT claim forks into "when it matches" and "otherwise". Each fork is a `Branch` with its
own steps and outcome, so every answer is either certain or says exactly what it depends on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from meshctl.explain.request import Request

__all__ = ["Branch", "Explanation", "Outcome", "Rejected", "Source", "Step", "Verdict"]


@dataclass(frozen=True, slots=True)
class Source:
    """The Istio (or Kubernetes) resource behind a step: `Kind namespace/name`, and with the
    input files at hand, the file, line and field path that produced it."""

    ref: str
    location: str = ""
    field: str = ""

    def __str__(self) -> str:
        text = self.ref
        if self.location:
            text += f" ({self.location}" + (f" {self.field}" if self.field else "") + ")"
        elif self.field:
            text += f" ({self.field})"
        return text

    def data(self) -> dict[str, str]:
        out = {"resource": self.ref}
        if self.location:
            out["location"] = self.location
        if self.field:
            out["field"] = self.field
        return out


@dataclass(frozen=True, slots=True)
class Rejected:
    """A candidate Envoy looked at before the one it took, and why it did not match."""

    name: str
    reasons: tuple[str, ...]
    sources: tuple[Source, ...] = ()

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "reasons": list(self.reasons)}
        if self.sources:
            out["sources"] = [source.data() for source in self.sources]
        return out


@dataclass(frozen=True, slots=True)
class Step:
    """One decision: `stage` (listener, filter chain, route, cluster, ...), what was chosen,
    facts about the choice, the candidates passed over, and the config that made it."""

    stage: str
    name: str
    facts: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    rejected: tuple[Rejected, ...] = ()

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.stage, "name": self.name}
        if self.facts:
            out["facts"] = list(self.facts)
        if self.sources:
            out["sources"] = [source.data() for source in self.sources]
        if self.rejected:
            out["rejected"] = [item.data() for item in self.rejected]
        return out


class Verdict(enum.StrEnum):
    """How the request ends in this proxy."""

    forwarded = "forwarded"  # sent upstream to a cluster (its endpoints listed)
    passthrough = "passthrough"  # forwarded to the original destination, outside the mesh's clusters
    bypassed = "bypassed"  # the connection never reaches this proxy
    direct_response = "direct-response"  # answered by the proxy (status, body)
    redirect = "redirect"  # answered with a redirect
    denied = "denied"  # refused by RBAC
    rejected = "rejected"  # no listener, filter chain, virtual host or route; or a blackhole
    undetermined = "undetermined"  # the config does not hold what is needed to decide


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the request ends: the verdict, a sentence, the HTTP status the client gets (if the
    proxy answers), and for failures a stable `code` for programs (`no-filter-chain`,
    `tls-handshake`, `protocol-error`, `no-virtual-host`, `no-route`, `cluster-not-found`,
    `no-endpoints`, `blackhole`, `rbac`, `fault`, `no-listener`, `unknown`)."""

    verdict: Verdict
    summary: str
    status: int | None = None
    code: str = ""

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict.value, "summary": self.summary}
        if self.status is not None:
            out["status"] = self.status
        if self.code:
            out["code"] = self.code
        return out


@dataclass(frozen=True, slots=True)
class Branch:
    """One way the request continues after a fork: taken `condition` (`weight 80%`, `when the
    JWT claim matches`), with its own steps and outcome, or forking again."""

    condition: str
    steps: tuple[Step, ...] = ()
    outcome: Outcome | None = None
    branches: tuple[Branch, ...] = ()

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"condition": self.condition, "steps": [step.data() for step in self.steps]}
        if self.outcome is not None:
            out["outcome"] = self.outcome.data()
        if self.branches:
            out["branches"] = [branch.data() for branch in self.branches]
        return out


@dataclass(frozen=True, slots=True)
class Explanation:
    """The whole answer for one request at one proxy."""

    proxy: str
    request: Request
    steps: tuple[Step, ...] = ()
    outcome: Outcome | None = None
    branches: tuple[Branch, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def outcomes(self) -> list[Outcome]:
        """Every way the request can end (one, unless it forks)."""
        found: list[Outcome] = []

        def walk(outcome: Outcome | None, branches: tuple[Branch, ...]) -> None:
            if outcome is not None:
                found.append(outcome)
            for branch in branches:
                walk(branch.outcome, branch.branches)

        walk(self.outcome, self.branches)
        return found

    def data(self) -> dict[str, Any]:
        request = self.request
        out: dict[str, Any] = {
            "proxy": self.proxy,
            "request": {
                "direction": request.direction.value,
                "url": request.url,
                "protocol": request.protocol,
                "transport": request.transport.value,
                "destination": {"address": request.address, "port": request.port},
                "source": {"address": request.source_ip},
            },
            "steps": [step.data() for step in self.steps],
        }
        if request.http:
            out["request"]["method"] = request.method
            out["request"]["authority"] = request.authority
            out["request"]["path"] = request.path
            out["request"]["headers"] = [[name, value] for name, value in request.headers]
        if request.sni:
            out["request"]["sni"] = request.sni
        if self.outcome is not None:
            out["outcome"] = self.outcome.data()
        if self.branches:
            out["branches"] = [branch.data() for branch in self.branches]
        if self.notes:
            out["notes"] = list(self.notes)
        return out
