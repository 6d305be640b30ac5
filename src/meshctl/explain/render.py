"""An explanation as text (`-o short`) and as data (`-o json`).

The text reads top to bottom as the request travels: one block per step, its stage on the
left, what was chosen, the facts that chose it, `from` lines naming the config (file:line with
input files), `not` lines for the candidates passed over and why. Forks indent their branches.
The last line of each path, `=>`, says how the request ends.
"""

from __future__ import annotations

from meshctl.explain.result import Branch, Explanation, Outcome, Step, Verdict

__all__ = ["explanation_text"]

_WIDTH = 14


def explanation_text(explanation: Explanation, *, verbose: bool = False) -> str:
    """The explanation for a reader; `verbose` lists every rejected candidate (otherwise the
    first few of each step, and a count)."""
    request = explanation.request
    lines = [f"{explanation.proxy}: {request.method + ' ' if request.http else ''}{request.url} "
             f"({request.direction.value}, {request.protocol}, {request.transport.value})"]
    if request.http and request.headers:
        lines.append("  " + ", ".join(f"{name}: {value}" for name, value in request.headers))
    lines.append("")
    _path(lines, explanation.steps, explanation.outcome, explanation.branches, "", verbose)
    for note in explanation.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def _path(lines: list[str], steps: tuple[Step, ...], outcome: Outcome | None, branches: tuple[Branch, ...],
          indent: str, verbose: bool) -> None:
    for step in steps:
        _step(lines, step, indent, verbose)
    if outcome is not None:
        prefix = "undetermined: " if outcome.verdict is Verdict.undetermined else ""
        lines.append(f"{indent}=> {prefix}{outcome.summary}")
    for branch in branches:
        lines.append(f"{indent}-- {branch.condition}:")
        _path(lines, branch.steps, branch.outcome, branch.branches, indent + "   ", verbose)


def _step(lines: list[str], step: Step, indent: str, verbose: bool) -> None:
    pad = indent + " " * _WIDTH
    lines.append(f"{indent}{step.stage.replace('-', ' '):<{_WIDTH - 1}} {step.name}")
    shown = step.facts if verbose or len(step.facts) <= 8 else (*step.facts[:6], f"... {len(step.facts) - 6} more")
    lines.extend(f"{pad}{fact}" for fact in shown)
    lines.extend(f"{pad}from {source}" for source in step.sources[: None if verbose else 4])
    if not verbose and len(step.sources) > 4:
        lines.append(f"{pad}... and {len(step.sources) - 4} more sources")
    rejected = step.rejected if verbose else step.rejected[-5:]
    if len(rejected) < len(step.rejected):
        lines.append(f"{pad}not: {len(step.rejected) - len(rejected)} earlier candidates (-v lists them)")
    for item in rejected:
        reasons = "; ".join(item.reasons)
        origin = f" [{item.sources[0]}]" if item.sources else ""
        lines.append(f"{pad}not {item.name}: {reasons}{origin}")
