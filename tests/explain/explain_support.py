"""Explain from YAML text in tests, and the outcome summarised as Istio's simulation reports it.

Every request explained here is explained twice: on the proxy translated a resource at a time
(what `explain -f` does) and on its whole translation (what `translate` renders), and the two
answers must be identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshctl.explain.address import RegistryResolver
from meshctl.explain.engine import explain
from meshctl.explain.request import Direction, Request, Transport, parse_request
from meshctl.explain.result import Explanation, Step
from meshctl.explain.sources import Subject, from_inputs, load_inputs
from meshctl.explain.view import Identity, TranslatedView
from meshctl.generate.proxy import generate


@dataclass(frozen=True, slots=True)
class Both(Subject):
    """A proxy as `explain -f` translates it, with its whole translation beside it."""

    whole: Subject | None = None


def whole_translation(files: Sequence[str], target: str, namespace: str = "default") -> Subject:
    """The proxy `target` translated whole, as `meshctl translate` renders it."""
    inputs = load_inputs(files, namespace)
    proxy = inputs.snapshot.proxy(target, namespace)
    view = TranslatedView(generate(inputs.snapshot, proxy), Identity(proxy.id, proxy.namespace, proxy.ip, proxy.dns_domain))
    return Subject(view, inputs.provenance, RegistryResolver(inputs.snapshot))


def subject(tmp_path: Path, yaml_text: str, target: str, name: str = "mesh.yaml") -> Subject:
    """The proxy `target` translated from `yaml_text` (written to a file, so lines are real)."""
    path = tmp_path / name
    path.write_text(yaml_text)
    found = from_inputs([str(path)], target, "default")
    return Both(found.view, found.provenance, found.resolver, whole_translation([str(path)], target))


def run(found: Subject, url: str, **options: object) -> Explanation:
    request = parse_request(url, **options)  # type: ignore[arg-type]
    answer = explain(found.view, request, found.provenance, found.resolver)
    if isinstance(found, Both) and found.whole is not None:
        whole = found.whole
        assert explain(whole.view, request, whole.provenance, whole.resolver).data() == answer.data(), \
            "the proxy translated in parts answers differently from its whole translation"
    return answer


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


__all__ = ["Both", "Direction", "Request", "Result", "Transport", "result", "run", "subject", "whole_translation"]
