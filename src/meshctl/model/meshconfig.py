"""Mesh-wide settings that shape every proxy's config, with istiod's code defaults, and the
reading of a mesh config file (`--mesh-config` / `--meshConfigFile`) into them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshctl.config.documents import read_file
from meshctl.config.paths import FieldPath, format_path
from meshctl.errors import BadInputError
from meshctl.model.extension_providers import ExtensionProvider, providers_from
from meshctl.hostnames import DEFAULT_DOMAIN

__all__ = ["MeshConfig", "mesh_config_from", "read_mesh_config"]


@dataclass(frozen=True, slots=True)
class MeshConfig:
    """The subset of Istio's MeshConfig meshctl reads (translation-spec §9.1).

    Defaults are istiod's code defaults, not a Helm profile's: no metrics provider (so no
    `istio.stats` filters) and no access log. `proxy_metadata` is `defaultConfig.proxyMetadata`
    as sorted pairs (the config is hashed as a cache key, so it holds no dicts).
    """

    trust_domain: str = DEFAULT_DOMAIN
    domain: str = DEFAULT_DOMAIN
    root_namespace: str = "istio-system"
    connect_timeout_seconds: int = 10
    outbound_policy: str = "ALLOW_ANY"
    inbound_policy: str = "PASSTHROUGH"
    enable_auto_mtls: bool = True
    proxy_listen_port: int = 15001
    proxy_inbound_listen_port: int = 15006
    locality_lb_enabled: bool = True
    h2_upgrade: bool = False
    dns_refresh_rate_seconds: int = 60
    enable_tracing: bool = True
    cluster_id: str = "Kubernetes"
    transport_socket_connect_timeout_seconds: int = 15
    ingress_controller_mode: str = "STRICT"
    ingress_service: str = "istio-ingressgateway"
    proxy_metadata: tuple[tuple[str, str], ...] = ()
    trust_domain_aliases: tuple[str, ...] = ()
    extension_providers: tuple[ExtensionProvider, ...] = ()
    mesh_id: str = ""
    default_proxy_config: str = ""
    """`defaultConfig` as compact JSON (hashable), read whole by sidecar injection, which puts
    the pod's effective ProxyConfig into the proxy's environment."""

    @property
    def trust_domain_bundle(self) -> tuple[str, ...]:
        """The trust domain, then its aliases: every name this mesh's identities go by."""
        return tuple(dict.fromkeys((self.trust_domain, *self.trust_domain_aliases)))

    def metadata(self, key: str) -> str | None:
        """One `defaultConfig.proxyMetadata` value (ISTIO_META_DNS_CAPTURE, ...)."""
        return dict(self.proxy_metadata).get(key)


Reader = Callable[[Any], Any]


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected a boolean")
    return value


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError("expected a port number")
    return value


def _seconds(value: Any) -> int:
    from meshctl.config.values import parse_duration

    nanos = parse_duration(value) if isinstance(value, str) else None
    if nanos is None:
        raise ValueError("expected a duration such as 10s")
    return max(1, nanos // 1_000_000_000)


def _one_of(*values: str) -> Reader:
    def read(value: Any) -> str:
        if value not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return str(value)
    return read


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def _json_object(value: Any) -> str:
    import json

    if not isinstance(value, dict):
        raise ValueError("expected a map of fields")
    return json.dumps(value, separators=(",", ":"))


def _metadata(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise ValueError("expected a map of strings")
    return tuple(sorted(value.items()))


# (field path in the mesh config, MeshConfig attribute, how to read it)
_FIELDS: tuple[tuple[FieldPath, str, Reader], ...] = (
    (("trustDomain",), "trust_domain", _string),
    (("rootNamespace",), "root_namespace", _string),
    (("connectTimeout",), "connect_timeout_seconds", _seconds),
    (("outboundTrafficPolicy", "mode"), "outbound_policy", _one_of("ALLOW_ANY", "REGISTRY_ONLY")),
    (("inboundTrafficPolicy", "mode"), "inbound_policy", _one_of("PASSTHROUGH", "LOCALHOST")),
    (("enableAutoMtls",), "enable_auto_mtls", _boolean),
    (("proxyListenPort",), "proxy_listen_port", _port),
    (("proxyInboundListenPort",), "proxy_inbound_listen_port", _port),
    (("localityLbSetting", "enabled"), "locality_lb_enabled", _boolean),
    (("h2UpgradePolicy",), "h2_upgrade", lambda value: _one_of("DO_NOT_UPGRADE", "UPGRADE")(value) == "UPGRADE"),
    (("dnsRefreshRate",), "dns_refresh_rate_seconds", _seconds),
    (("enableTracing",), "enable_tracing", _boolean),
    (("ingressControllerMode",), "ingress_controller_mode", _one_of("UNSPECIFIED", "OFF", "DEFAULT", "STRICT")),
    (("ingressService",), "ingress_service", _string),
    (("defaultConfig", "proxyMetadata"), "proxy_metadata", _metadata),
    (("trustDomainAliases",), "trust_domain_aliases", _string_list),
    (("extensionProviders",), "extension_providers", providers_from),
    (("defaultConfig",), "default_proxy_config", _json_object),
    (("meshId",), "mesh_id", _string),
)


def _lookup(document: Mapping[str, Any], path: FieldPath) -> Any:
    value: Any = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def mesh_config_from(document: Mapping[str, Any], problem: Callable[[FieldPath, str], None]) -> MeshConfig:
    """The settings a mesh config document sets, over istiod's defaults. Fields meshctl does
    not read are left alone (a mesh config has many); a field it reads with a wrong value is
    reported through `problem` and keeps its default."""
    changes: dict[str, Any] = {}
    for path, attribute, read in _FIELDS:
        value = _lookup(document, path)
        if value is None:
            continue
        try:
            changes[attribute] = read(value)
        except ValueError as exc:
            problem(path, str(exc))
    return dataclasses.replace(MeshConfig(), **changes)


def read_mesh_config(file: str) -> MeshConfig:
    """A mesh config file (the `mesh` key of Istio's ConfigMap, as YAML or JSON), or a
    BadInputError naming each problem's file, line and field."""
    documents, errors = read_file(file)
    problems = [str(error) for error in errors]
    if not problems and len(documents) != 1:
        problems.append(f"{file}: expected one mesh config document, found {len(documents)}")
    if problems:
        raise BadInputError(problems)
    document = documents[0]
    if not isinstance(document.value, dict):
        raise BadInputError([f"{file}:{document.line}: a mesh config is a map of fields"])

    def problem(path: FieldPath, message: str) -> None:
        problems.append(f"{file}:{document.line_of(path)}: {format_path(path)}: {message}")

    mesh = mesh_config_from(document.value, problem)
    if problems:
        raise BadInputError(problems)
    return mesh
