"""A pod's effective ProxyConfig: the mesh's `defaultConfig` with the pod's
`proxy.istio.io/config` annotation applied over it, as Istio's injector computes it.

The annotation is YAML of Istio's ProxyConfig message. Applying it is a protobuf merge: scalar
fields replace, maps (`proxyMetadata`) and messages merge key by key. A field ProxyConfig does
not have, or a value of the wrong type, makes the annotation invalid (and the injection fail),
as Istio's strict YAML decoding and agent validation do. The whole effective config goes to the
proxy as `PROXY_CONFIG`; the few fields injection itself reads become typed attributes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshctl.config.kinds.mesh import ProxyConfig as MeshProxyConfig
from meshctl.config.values import parse_duration

__all__ = [
    "DEFAULT_STATUS_PORT",
    "INTERCEPTION_MODES",
    "ProxyConfig",
    "ProxyConfigError",
    "effective",
    "merged",
    "parse_annotation",
    "parse_fields",
]

INTERCEPTION_MODES = ("REDIRECT", "TPROXY", "NONE")
DEFAULT_STATUS_PORT = 15020

# Every field of istio.mesh.v1alpha1.ProxyConfig, by its JSON name: the mesh config's own
# declaration of defaultConfig, so the annotation and the mesh config know the same fields.
_FIELDS = frozenset(MeshProxyConfig.SCHEMA.fields)
_PORTS = ("statusPort", "proxyAdminPort")
_DURATIONS = ("drainDuration", "parentShutdownDuration", "discoveryRefreshDelay", "terminationDrainDuration",
              "fileFlushInterval")
_MAPS = ("proxyMetadata", "runtimeValues")


class ProxyConfigError(ValueError):
    """A ProxyConfig that Istio's agent would refuse; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The effective config (`fields`, as JSON-ready data) and what injection reads from it."""

    fields: Mapping[str, Any]

    @property
    def interception_mode(self) -> str:
        return str(self.fields.get("interceptionMode") or "REDIRECT")

    @property
    def status_port(self) -> int:
        return int(self.fields.get("statusPort") or DEFAULT_STATUS_PORT)

    @property
    def hold_application(self) -> bool:
        return bool(self.fields.get("holdApplicationUntilProxyStarts"))

    @property
    def concurrency(self) -> int | None:
        value = self.fields.get("concurrency")
        return int(value) if value is not None else None

    @property
    def termination_drain_duration(self) -> str | None:
        value = self.fields.get("terminationDrainDuration")
        return str(value) if value else None

    @property
    def metadata(self) -> dict[str, str]:
        """`proxyMetadata`: environment for istio-init and istio-proxy alike."""
        return dict(self.fields.get("proxyMetadata") or {})

    def to_env(self) -> str:
        """`PROXY_CONFIG`'s value: the fields set, as one line of JSON and a newline."""
        return json.dumps(dict(self.fields), separators=(",", ":")) + "\n"


def parse_fields(value: Any) -> dict[str, Any]:
    """A ProxyConfig document checked field by field; raises ProxyConfigError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProxyConfigError("failed to convert to apply proxy config: expected a map of ProxyConfig fields")
    for key, item in value.items():
        if key not in _FIELDS:
            raise ProxyConfigError(f'failed to convert to apply proxy config: unknown field "{key}" in '
                                   "v1alpha1.ProxyConfig")
        _check(key, item)
    return dict(value)


def _check(key: str, value: Any) -> None:
    if key in _PORTS:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise ProxyConfigError(f"{key}: port number {value!r} must be in the range 1..65535")
    elif key == "concurrency":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ProxyConfigError(f"concurrency must be greater than or equal to 0, not {value!r}")
    elif key == "interceptionMode":
        if value not in INTERCEPTION_MODES:
            raise ProxyConfigError(f'failed to convert to apply proxy config: invalid value for enum field '
                                   f'interceptionMode: "{value}"')
    elif key == "holdApplicationUntilProxyStarts":
        if not isinstance(value, bool):
            raise ProxyConfigError(f"holdApplicationUntilProxyStarts: expected true or false, not {value!r}")
    elif key in _DURATIONS:
        if not isinstance(value, str) or parse_duration(value) is None:
            raise ProxyConfigError(f"{key}: invalid duration {value!r}")
    elif key in _MAPS:
        if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
            raise ProxyConfigError(f"{key}: expected a map of strings")
    elif key == "discoveryAddress":
        host, sep, port = str(value).rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ProxyConfigError(f"invalid discovery address {value!r}: expected HOST:PORT")


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` applied over `base` as a protobuf merge: maps and messages key by key."""
    result = dict(base)
    for key, value in override.items():
        current = result.get(key)
        result[key] = merged(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return result


def effective(base: Mapping[str, Any], annotation: str | None) -> ProxyConfig:
    """The mesh's `defaultConfig` (checked when the mesh config was read) with the
    `proxy.istio.io/config` annotation (YAML) over it."""
    return ProxyConfig(merged(base, parse_annotation(annotation)) if annotation else base)


def parse_annotation(text: str) -> dict[str, Any]:
    """The annotation's YAML, checked; raises ProxyConfigError."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise ProxyConfigError(f"failed to convert to apply proxy config: {reason}") from None
    return parse_fields(value)
