"""Requests by path, through the official client's REST layer, for code that handles objects as
JSON (watches, applying manifests) rather than as the client's generated models.

The client's typed methods turn every answer into pydantic models; for thousands of pods, or
for kinds it has no model of (CRDs), meshctl reads and writes plain JSON instead. Credentials,
TLS and proxies are still the client's: `call` goes through the same `ApiClient`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshctlError

if TYPE_CHECKING:
    import urllib3
    from kubernetes.client import ApiClient

__all__ = ["ApiError", "call", "call_json"]

MERGE_PATCH = "application/merge-patch+json"


class ApiError(MeshctlError):
    """The API server answered with an error status (`status`, its HTTP code)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def call(api: ApiClient, method: str, path: str, *, query: Mapping[str, str] | None = None,
         body: Any = None, content_type: str = "application/json",
         timeout: float | tuple[float, float] | None = None) -> urllib3.BaseHTTPResponse:
    """The raw response to one request (to be read or streamed); ApiError on a non-2xx answer."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    method, url, headers, serialized, post = api.param_serialize(
        method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
        auth_settings=["BearerToken"],
    )
    response: urllib3.BaseHTTPResponse = api.call_api(method, url, headers, serialized, post,
                                                      _request_timeout=timeout).response
    if not 200 <= response.status < 300:
        from meshctl.kube.client import status_message

        text = response.data.decode(errors="replace")
        raise ApiError(response.status, status_message(text) or text[:300] or str(response.reason or ""))
    return response


def call_json(api: ApiClient, method: str, path: str, **options: Any) -> Any:
    """The JSON document an API request answers with."""
    return json.loads(call(api, method, path, **options).data or b"null")
