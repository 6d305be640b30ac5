"""AdmissionReview in, AdmissionReview out: the envelope both webhooks share.

The API server sends `admission.k8s.io/v1` (or `v1beta1`) AdmissionReviews; the answer has the
same apiVersion and kind, the request's uid, and either `allowed: true` (with a base64 JSON
patch for a mutation) or `allowed: false` with a message. A body that is no AdmissionReview is
answered `allowed: false` naming the problem, in `v1beta1` as istiod does. uid and operation are
optional: istioctl's remote kube-inject sends neither.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["API_VERSIONS", "Answer", "FALLBACK_API_VERSION", "Request", "ReviewError", "answer_review", "read_review"]

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
FALLBACK_API_VERSION = "admission.k8s.io/v1beta1"


class ReviewError(ValueError):
    """The body is not an AdmissionReview this server can answer."""


@dataclass(frozen=True, slots=True)
class Request:
    """What the webhooks read from an AdmissionReview's `request`."""

    api_version: str
    uid: str
    namespace: str
    name: str
    operation: str
    group: str
    kind: str
    object: dict[str, Any]
    dry_run: bool


@dataclass(frozen=True, slots=True)
class Answer:
    """A webhook's verdict: allowed or not, with a patch, a message, warnings."""

    allowed: bool
    message: str = ""
    patch: Sequence[dict[str, Any]] | None = None
    warnings: Sequence[str] = field(default_factory=tuple)


def read_review(body: bytes) -> Request:
    """The request of an AdmissionReview; raises ReviewError for anything else."""
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReviewError(f"could not decode body: {exc}") from None
    if not isinstance(review, dict):
        raise ReviewError("could not decode body: not an AdmissionReview object")
    api_version = review.get("apiVersion")
    if api_version not in API_VERSIONS or review.get("kind") != "AdmissionReview":
        raise ReviewError(f"unsupported AdmissionReview apiVersion {api_version!r} and kind {review.get('kind')!r}; "
                          f"expected kind AdmissionReview, apiVersion {' or '.join(API_VERSIONS)}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError("the AdmissionReview has no request")
    obj = request.get("object")
    if not isinstance(obj, dict):
        raise ReviewError("the AdmissionReview request has no object")
    kind = request.get("kind") if isinstance(request.get("kind"), dict) else {}
    group = str(kind.get("group") or "") if kind else _group(obj.get("apiVersion"))
    return Request(
        api_version=str(api_version),
        uid=str(request.get("uid") or ""),
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or ""),
        operation=str(request.get("operation") or ""),
        group=group,
        kind=str(kind.get("kind") or "") if kind else str(obj.get("kind") or ""),
        object=obj,
        dry_run=request.get("dryRun") is True,
    )


def _group(api_version: Any) -> str:
    text = str(api_version or "")
    return text.split("/", 1)[0] if "/" in text else ""


def answer_review(api_version: str, uid: str, answer: Answer) -> bytes:
    """The AdmissionReview answering a request (as JSON bytes)."""
    response: dict[str, Any] = {"uid": uid, "allowed": answer.allowed}
    if answer.patch is not None:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(answer.patch, separators=(",", ":")).encode()).decode()
    if answer.message:
        response["status"] = {"message": answer.message}
    if answer.warnings:
        response["warnings"] = list(answer.warnings)
    return json.dumps({"apiVersion": api_version, "kind": "AdmissionReview", "response": response},
                      separators=(",", ":")).encode()
