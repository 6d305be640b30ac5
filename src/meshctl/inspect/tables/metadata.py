"""The Istio config that produced a cluster or route, read from its `istio` filter metadata.

istiod stamps clusters and routes with `filter_metadata.istio.config`, a path such as
`/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews`. istioctl shows it as
`name.namespace`; meshctl's wide views also show the kind.
"""

from __future__ import annotations

from typing import Any

__all__ = ["config_path", "describe_management", "describe_owner"]

_RENDERED_PREFIX = "/apis/networking.istio.io/v1/namespaces/"


def config_path(metadata: Any) -> str | None:
    """The `istio.config` string, or None when the metadata does not carry one."""
    istio = metadata.filter_metadata.get("istio")
    if istio is None or "config" not in istio.fields:
        return None
    return istio.fields["config"].string_value


def describe_management(holder: Any) -> str:
    """istioctl's DESTINATION RULE / VIRTUAL SERVICE cell for a cluster or route.

    Empty without metadata; `name.namespace` for a networking.istio.io/v1 path of eight
    `/`-pieces, empty for another v1 path, `<unknown>` for anything else (older API versions too).
    """
    if not holder.HasField("metadata"):
        return ""
    path = config_path(holder.metadata)
    if path is None:
        return ""
    if not path.startswith(_RENDERED_PREFIX):
        return "<unknown>"
    pieces = path.split("/")
    if len(pieces) != 8:
        return ""
    return f"{pieces[7]}.{pieces[5]}"


def describe_owner(holder: Any) -> str:
    """`namespace/kind/name` for any `/apis/<group>/<version>/namespaces/<ns>/<kind>/<name>`
    path (meshctl's wide view); the raw path when it has another shape, `-` when there is none."""
    path = config_path(holder.metadata) if holder.HasField("metadata") else None
    if not path:
        return "-"
    pieces = path.split("/")
    if len(pieces) == 8 and pieces[1] == "apis" and pieces[4] == "namespaces":
        return f"{pieces[5]}/{pieces[6]}/{pieces[7]}"
    return path
