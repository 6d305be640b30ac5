"""Explain from YAML text in tests, and the outcome summarised as Istio's simulation reports it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshctl.explain.engine import explain
from meshctl.explain.request import Direction, Request, Transport, parse_request
from meshctl.explain.result import Explanation, Step
from meshctl.explain.sources import Subject, from_inputs


def subject(tmp_path: Path, yaml_text: str, target: str, name: str = "mesh.yaml") -> Subject:
    """The proxy `target` translated from `yaml_text` (written to a file, so lines are real)."""
    path = tmp_path / name
    path.write_text(yaml_text)
    found, _warnings = from_inputs([str(path)], target, "default")
    return found


def run(found: Subject, url: str, **options: object) -> Explanation:
    request = parse_request(url, **options)  # type: ignore[arg-type]
    return explain(found.view, request, found.provenance, found.resolver)


@dataclass(frozen=True)
class Result:
    """What Istio's `simulation.Result` compares: the last listener, the chain, the virtual
    host, the route and the cluster of the one path taken, or the failure code."""

    listener: str = ""
    chain: str = ""
    vhost: str = ""
    route: str = ""
    cluster: str = ""
    error: str = ""


def result(explanation: Explanation) -> Result:
    assert not explanation.branches, f"expected one path, got branches: {explanation.data()}"
    steps: Sequence[Step] = explanation.steps
    outcome = explanation.outcome
    assert outcome is not None

    def last(stage: str) -> str:
        names = [step.name for step in steps if step.stage == stage]
        return names[-1] if names else ""

    # Istio's simulation stops at the cluster: what its endpoints (or their absence) do is not its
    # business, and a blackhole is a cluster like another.
    upstream = ("", "blackhole", "no-endpoints", "cluster-not-found")
    return Result(last("listener"), last("filter-chain"), last("virtual-host"), last("route"), last("cluster"),
                  "" if outcome.code in upstream else outcome.code)


__all__ = ["Direction", "Request", "Result", "Transport", "result", "run", "subject"]
