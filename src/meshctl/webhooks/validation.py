"""`/validate`: Galley's validating webhook, refusing what `meshctl validate` refuses.

The object goes through the same loader as a file does (schema, Istio's webhook rules, names),
so the webhook and `meshctl validate` cannot disagree: each refusal is the line validate prints
without its `FILE:LINE: ` (a cluster object has neither), e.g. `Gateway default/example:
spec.servers: required field is missing`, one per line. Objects outside Istio's API groups, and
Istio kinds meshctl does not read, are allowed, as is any operation but CREATE and UPDATE.
Answering has no side effect, so a dry-run request is answered exactly like a real one.
"""

from __future__ import annotations

from meshctl.config.documents import Document
from meshctl.config.loader import Problem, load_documents
from meshctl.webhooks.admission import Answer, Request

__all__ = ["ALWAYS_REJECT", "ISTIO_GROUPS", "review_config", "unlocated"]

ISTIO_GROUPS = ("networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io")
ALWAYS_REJECT = "internal.istio.io/webhook-always-reject"
_VALIDATED_OPERATIONS = ("", "CREATE", "UPDATE")


def review_config(request: Request) -> Answer:
    """The validator's answer for one object."""
    if request.operation not in _VALIDATED_OPERATIONS or request.group not in ISTIO_GROUPS:
        return Answer(True)
    metadata = request.object.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict) and ALWAYS_REJECT in annotations:
        return Answer(False, f'"{ALWAYS_REJECT}" annotation found, rejecting')
    result = load_documents("", [Document("", 0, request.object)], (), request.namespace or "default")
    if result.problems:
        return Answer(False, "\n".join(unlocated(problem) for problem in result.problems))
    return Answer(True)


def unlocated(problem: Problem) -> str:
    """A problem as validate prints it, without the file and line a cluster object lacks."""
    return ": ".join(part for part in (problem.subject, problem.field, problem.message) if part)
