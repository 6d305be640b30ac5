"""`proxy-config bootstrap -o short`: Istio and Envoy versions from the bootstrap, padding 1."""

from __future__ import annotations

from typing import Any

from meshctl.inspect.configdump import ConfigDump
from meshctl.inspect.tabwriter import tabulate

__all__ = ["bootstrap_summary", "envoy_version"]


def bootstrap_summary(dump: ConfigDump) -> str:
    """`Istio Version:`, `Istio Proxy Version:` (only when the node metadata has them) and
    `Envoy Version:` (always; `0.0.0` when the bootstrap has no build version)."""
    node = dump.bootstrap().bootstrap.node
    metadata = node.metadata.fields
    lines = []
    istio_version = _string(metadata, "ISTIO_VERSION")
    if istio_version:
        lines.append(f"Istio Version:\t{istio_version}\n")
    proxy_sha = _string(metadata, "ISTIO_PROXY_SHA")
    if ":" in proxy_sha:
        proxy_sha = proxy_sha.split(":")[1]
    if proxy_sha:
        lines.append(f"Istio Proxy Version:\t{proxy_sha}\n")
    lines.append(f"Envoy Version:\t{envoy_version(node)}\n")
    return tabulate("".join(lines), padding=1)


def envoy_version(node: Any) -> str:
    """`major.minor.patch[-label][/revision.status][/build.type][/ssl.version]`."""
    build = node.user_agent_build_version
    version = build.version
    text = f"{version.major_number}.{version.minor_number}.{version.patch}"
    fields = build.metadata.fields
    if "build.label" in fields:
        text += f"-{fields['build.label'].string_value}"
    for key in ("revision.status", "build.type", "ssl.version"):
        if key in fields:
            text += f"/{fields[key].string_value}"
    return text


def _string(fields: Any, key: str) -> str:
    return fields[key].string_value if key in fields else ""
