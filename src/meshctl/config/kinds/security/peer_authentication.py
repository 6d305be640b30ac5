"""PeerAuthentication: whether workloads accept plaintext, mutual TLS, or both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshctl.config.kinds.common import WorkloadSelector
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, Map, Report, Str

__all__ = ["MTLS_MODE", "MutualTLS", "PeerAuthentication"]

MTLS_MODE = Enum("UNSET", "DISABLE", "PERMISSIVE", "STRICT")


def _port_key_rule(value: str, path: FieldPath, report: Report) -> None:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        report(path, f"port {value!r} must be a number between 1 and 65535")


def _peer_authentication_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    ports = spec.get("portLevelMtls")
    if ports is None:
        return
    if not ports:
        report((*path, "portLevelMtls"), "portLevelMtls, when set, needs at least one port")
    elif not (spec.get("selector") or {}).get("matchLabels"):
        report((*path, "portLevelMtls"),
               "portLevelMtls needs a selector with matchLabels: mesh- and namespace-wide policies cannot set it")


@message
class MutualTLS(Message):
    """PeerAuthentication.MutualTLS: `mode` is "" when not given (UNSET: inherit)."""

    mode: str = field(MTLS_MODE)


@message(rules=[_peer_authentication_rule])
class PeerAuthentication(Message):
    """`port_level_mtls` is keyed by port number (Istio's map<uint32, MutualTLS>)."""

    selector: WorkloadSelector | None = None
    mtls: MutualTLS | None = None
    port_level_mtls: Mapping[int, MutualTLS] = field(Map(MutualTLS.SCHEMA, key=Str(rules=[_port_key_rule])))
