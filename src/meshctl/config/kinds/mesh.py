"""MeshConfig: the mesh-wide settings istiod reads from the `mesh` key of the `istio` ConfigMap.

Declared like every spec meshctl reads (one `@message` class per message, giving schema and
view at once), with istiod's code defaults (`DefaultMeshConfig()`, not a Helm profile's) as the
fields' defaults: a field the file sets replaces the default wholesale, as Istio's
`ApplyMeshConfig` does (`outboundTrafficPolicy: {}` is REGISTRY_ONLY, the enum's zero). The
few fields Istio merges instead (`defaultConfig`, `extensionProviders`, `trustDomainAliases`)
are merged by `meshctl.model.meshconfig` before the view is built.

Fields that shape translation are typed and checked; the others Istio has (ports of the
control plane, Mixer-era leftovers, stat patterns) are accepted as they are, so a real
ConfigMap reads cleanly and a misspelt field is refused with its line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from meshctl.config.kinds.common import DURATION, EXPORT_TO, PORT, STRINGS, UINT32, Nanos
from meshctl.config.kinds.networking.destination_rule import LocalityLoadBalancerSetting, TcpKeepalive
from meshctl.config.messages import Message, Parse, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, Float, Int, List, Map, Report, Str
from meshctl.hostnames import DEFAULT_DOMAIN

__all__ = [
    "ALLOW_ANY",
    "ClientCertDetails",
    "DEFAULT_PROVIDERS",
    "DefaultConfig",
    "DefaultProviders",
    "Disableable",
    "ExtensionProvider",
    "ExternalAuthorizer",
    "FORWARD_CLIENT_CERT_MODES",
    "IN_MESH",
    "InboundTrafficPolicy",
    "LOCALHOST",
    "MeshConfig",
    "MetadataExchangeHeaders",
    "OutboundTrafficPolicy",
    "PASSTHROUGH",
    "ProxyConfig",
    "ProxyHeaders",
    "REGISTRY_ONLY",
    "RequestBodyCheck",
    "SECONDS_10",
    "SECONDS_60",
    "ServerHeader",
    "Tracing",
]

SECONDS_10 = 10 * 1_000_000_000
SECONDS_60 = 60 * 1_000_000_000

ALLOW_ANY = "ALLOW_ANY"
REGISTRY_ONLY = "REGISTRY_ONLY"
PASSTHROUGH = "PASSTHROUGH"
LOCALHOST = "LOCALHOST"


@message
class OutboundTrafficPolicy(Message):
    """`mode` "" is REGISTRY_ONLY: the enum's zero value, what `outboundTrafficPolicy: {}` means."""

    mode: str = field(Enum(REGISTRY_ONLY, ALLOW_ANY, "ALLOW_ANY_DYNAMIC_DNS"))


@message
class InboundTrafficPolicy(Message):
    mode: str = field(Enum(PASSTHROUGH, LOCALHOST))


@message
class Disableable(Message):
    """ProxyHeaders' on/off knobs (`requestId`, `attemptCount`, `envoyDebugHeaders`)."""

    disabled: bool = False


@message
class ServerHeader(Message):
    disabled: bool = False
    value: str = ""


@message
class ClientCertDetails(Message):
    """ProxyHeaders.setCurrentClientCertDetails: which parts of the client certificate the
    inbound connection manager puts in XFCC. Wrapper types: unset is not false (subject, URI
    and DNS default to on, certificate and chain to off)."""

    subject: bool | None = None
    cert: bool | None = None
    chain: bool | None = None
    dns: bool | None = None
    uri: bool | None = None


IN_MESH = "IN_MESH"
FORWARD_CLIENT_CERT_MODES = ("UNDEFINED", "SANITIZE", "FORWARD_ONLY", "APPEND_FORWARD", "SANITIZE_SET",
                             "ALWAYS_FORWARD_ONLY")
"""istio.mesh.v1alpha1.ForwardClientCertDetails; every value but UNDEFINED is Envoy's of that name."""


@message
class MetadataExchangeHeaders(Message):
    mode: str = field(Enum("UNDEFINED", IN_MESH))


@message(free=["xForwardedHost", "xForwardedPort"])
class ProxyHeaders(Message):
    """The header knobs of a proxy's HTTP connection managers, clusters and virtual hosts.
    Hashable: the per-proxy one is part of the cache keys of what reads it."""

    server: ServerHeader | None = None
    request_id: Disableable | None = None
    attempt_count: Disableable | None = None
    envoy_debug_headers: Disableable | None = None
    forwarded_client_cert: str = field(Enum(*FORWARD_CLIENT_CERT_MODES))
    set_current_client_cert_details: ClientCertDetails | None = None
    metadata_exchange_headers: MetadataExchangeHeaders | None = None
    preserve_http1_header_case: bool = False


@message(free=["zipkin", "lightstep", "datadog", "stackdriver", "openCensusAgent", "customTags", "tlsSettings"])
class Tracing(Message):
    """ProxyConfig.tracing: how much of the traffic is traced, and how long a path tag may be."""

    sampling: float = field(Float(0, 100))
    max_path_tag_length: int = field(Int(0, 2**32 - 1))


# ProxyConfig fields that shape the bootstrap, the agent or injection, never istiod's xDS.
_PROXY_CONFIG_ELSEWHERE = (
    "configPath", "binaryPath", "serviceCluster", "tracingServiceName", "drainDuration", "parentShutdownDuration",
    "discoveryAddress", "discoveryRefreshDelay", "zipkinAddress", "statsdUdpAddress", "envoyMetricsServiceAddress",
    "proxyAdminPort", "availabilityZone", "controlPlaneAuthPolicy", "customConfigFile", "statNameLength",
    "concurrency", "proxyBootstrapTemplatePath", "interceptionMode", "sds", "envoyAccessLogService",
    "envoyMetricsService", "extraStatTags", "proxyStatsMatcher", "terminationDrainDuration", "meshId",
    "readinessProbe", "holdApplicationUntilProxyStarts", "caCertificatesPem", "image", "privateKeyProvider",
    "statusPort", "runtimeValues", "gatewayTopology", "fileFlushInterval", "fileFlushMinSizeKb",
    "statsFlushInterval", "proxyStatsTags", "connectionSettings",
)


@message(free=_PROXY_CONFIG_ELSEWHERE)
class ProxyConfig(Message):
    """MeshConfig.defaultConfig: the defaults of every proxy (the parts xDS generation reads)."""

    proxy_metadata: Mapping[str, str] = field(Map(Str()))
    tracing: Tracing | None = None
    proxy_headers: ProxyHeaders | None = None


@dataclass(frozen=True, slots=True)
class DefaultConfig:
    """MeshConfig.defaultConfig twice over: `view`, the typed parts xDS generation reads, and
    `json`, the whole config as given (compact JSON, so the mesh config stays hashable), which
    sidecar injection merges the pod's annotation over and hands the proxy as PROXY_CONFIG."""

    view: ProxyConfig = ProxyConfig()
    json: str = ""

    @property
    def fields(self) -> dict[str, Any]:
        """The whole config as given, by JSON field name."""
        return dict(json.loads(self.json)) if self.json else {}


def _default_config(value: Mapping[str, Any]) -> DefaultConfig:
    return DefaultConfig(ProxyConfig.of(value), json.dumps(value, separators=(",", ":")))


def _provider_name_rule(value: str, path: FieldPath, report: Report) -> None:
    import re

    if len(value) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value):
        report(path, f"invalid provider name {value!r}: at most 63 lower-case letters, digits and '-', "
                     "starting and ending with a letter or digit")


@message
class RequestBodyCheck(Message):
    """includeRequestBodyInCheck: how much of the request body the authorizer sees."""

    max_request_bytes: int = field(UINT32)
    allow_partial_message: bool = False
    pack_as_bytes: bool = False


# Fields only an envoyExtAuthzHttp provider has: Envoy's HTTP authorization service takes them.
_HTTP_ONLY = ("pathPrefix", "includeRequestHeadersInCheck", "includeHeadersInCheck", "includeAdditionalHeadersInCheck",
              "headersToUpstreamOnAllow", "headersToDownstreamOnDeny", "headersToDownstreamOnAllow")


@message(required=["service", "port"])
class ExternalAuthorizer(Message):
    """An envoyExtAuthzHttp or envoyExtAuthzGrpc provider: the service AuthorizationPolicy
    CUSTOM hands requests to, and the knobs of Envoy's ext_authz filter. One declaration for
    both kinds; the fields of HTTP alone are refused on a gRPC provider by ExtensionProvider."""

    service: str = field(Str(min_len=1))
    port: int = field(PORT)
    timeout: Nanos | None = field(DURATION)
    fail_open: bool = False
    clear_route_cache: bool = False
    status_on_error: str = ""
    include_request_body_in_check: RequestBodyCheck | None = None
    path_prefix: str = ""
    include_request_headers_in_check: tuple[str, ...] = ()
    include_headers_in_check: tuple[str, ...] = ()
    include_additional_headers_in_check: Mapping[str, str] = field(Map(Str()))
    headers_to_upstream_on_allow: tuple[str, ...] = ()
    headers_to_downstream_on_deny: tuple[str, ...] = ()
    headers_to_downstream_on_allow: tuple[str, ...] = ()


def _grpc_has_no_http_fields(value: Mapping[str, Any], path: FieldPath, report: Report) -> None:
    grpc = value.get("envoyExtAuthzGrpc")
    if not isinstance(grpc, dict):
        return
    for key in _HTTP_ONLY:
        if key in grpc:
            report((*path, "envoyExtAuthzGrpc", key), "not a field of a gRPC authorizer (envoyExtAuthzHttp has it)")


_OTHER_PROVIDERS = ("zipkin", "lightstep", "datadog", "stackdriver", "opencensus", "skywalking", "opentelemetry",
                    "prometheus", "envoyFileAccessLog", "envoyHttpAls", "envoyTcpAls", "envoyOtelAls", "sds")
_PROVIDER_KINDS = ("envoyExtAuthzHttp", "envoyExtAuthzGrpc", *_OTHER_PROVIDERS)


@message(required=["name"], exactly_one=[_PROVIDER_KINDS], free=_OTHER_PROVIDERS, rules=[_grpc_has_no_http_fields])
class ExtensionProvider(Message):
    """A named telemetry, access log, credential or external authorization backend."""

    name: str = field(Str(min_len=1, rules=[_provider_name_rule]))
    envoy_ext_authz_http: ExternalAuthorizer | None = None
    envoy_ext_authz_grpc: ExternalAuthorizer | None = None

    @property
    def authorizer(self) -> ExternalAuthorizer | None:
        """The external authorizer this provider is (either kind), or None for another kind."""
        return self.envoy_ext_authz_grpc or self.envoy_ext_authz_http


def _unique_provider_names(value: list[Any], path: FieldPath, report: Report) -> None:
    seen: set[str] = set()
    for index, provider in enumerate(value):
        name = provider.get("name")
        if name in seen:
            report((*path, index, "name"), f"provider name {name!r} is defined twice")
        seen.add(name)


@message
class DefaultProviders(Message):
    tracing: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    access_logging: tuple[str, ...] = ()


DEFAULT_PROVIDERS: tuple[dict[str, Any], ...] = (
    {"name": "prometheus", "prometheus": {}},
    {"name": "stackdriver", "stackdriver": {}},
    {"name": "envoy", "envoyFileAccessLog": {"path": "/dev/stdout"}},
)
"""istiod's built-in extension providers; a provider of the same name in the file replaces one."""

# MeshConfig fields of Istio's API that shape nothing meshctl renders: the control plane's own
# settings, Kubernetes ingress conversion, certificates, stats patterns, Mixer-era leftovers.
_MESH_CONFIG_ELSEWHERE = (
    "proxyHttpPort", "protocolDetectionTimeout", "ingressClass", "ingressSelector", "accessLogFormat",
    "accessLogEncoding", "enableEnvoyAccessLogService", "disableEnvoyListenerLog", "configSources",
    "caCertificates", "inboundClusterStatName", "outboundClusterStatName", "certificates", "serviceSettings",
    "enablePrometheusMerge", "verifyCertificateAtClient", "ca", "discoverySelectors", "pathNormalization",
    "defaultHttpRetryPolicy", "defaultInboundHttpRetryPolicy", "meshMTLS", "tlsDefaults", "serviceScopeConfigs",
    "defaultTrafficPolicy", "thriftConfig", "sdsUdsPath", "enableSdsTokenMount",
    "sdsUseK8sSaJwt", "mixerCheckServer", "mixerReportServer", "disablePolicyChecks", "disableMixerHttpReports",
    "policyCheckFailOpen", "sidecarToTelemetrySessionAffinity", "enableClientSidePolicyCheck",
)


@message(free=_MESH_CONFIG_ELSEWHERE)
class MeshConfig(Message):
    """Istio's MeshConfig with istiod's code defaults (translation-spec §9.1)."""

    proxy_listen_port: int = field(PORT, default=15001)
    proxy_inbound_listen_port: int = field(PORT, default=15006)
    connect_timeout: Nanos = field(DURATION, default=SECONDS_10)
    tcp_keepalive: TcpKeepalive | None = None
    ingress_service: str = "istio-ingressgateway"
    ingress_controller_mode: str = field(Enum("UNSPECIFIED", "OFF", "DEFAULT", "STRICT"), default="STRICT")
    enable_tracing: bool = True
    access_log_file: str = ""
    default_config: Annotated[DefaultConfig, Parse(_default_config)] = field(ProxyConfig.SCHEMA,
                                                                             default=DefaultConfig())
    mesh_id: str = ""
    outbound_traffic_policy: OutboundTrafficPolicy | None = field(default=OutboundTrafficPolicy(mode=ALLOW_ANY))
    inbound_traffic_policy: InboundTrafficPolicy | None = field(default=InboundTrafficPolicy(mode=PASSTHROUGH))
    enable_auto_mtls: bool = True
    trust_domain: str = field(Str(min_len=1), default=DEFAULT_DOMAIN)
    trust_domain_aliases: tuple[str, ...] = field(STRINGS, default=())
    default_service_export_to: tuple[str, ...] = field(EXPORT_TO, default=("*",))
    default_virtual_service_export_to: tuple[str, ...] = field(EXPORT_TO, default=("*",))
    default_destination_rule_export_to: tuple[str, ...] = field(EXPORT_TO, default=("*",))
    root_namespace: str = field(Str(min_len=1), default="istio-system")
    locality_lb_setting: LocalityLoadBalancerSetting | None = field(
        default=LocalityLoadBalancerSetting(enabled=True))
    dns_refresh_rate: Nanos = field(DURATION, default=SECONDS_60)
    h2_upgrade_policy: str = field(Enum("DO_NOT_UPGRADE", "UPGRADE"))
    extension_providers: tuple[ExtensionProvider, ...] = field(
        List(ExtensionProvider.SCHEMA, rules=[_unique_provider_names]),
        default=tuple(ExtensionProvider.of(provider) for provider in DEFAULT_PROVIDERS))
    default_providers: DefaultProviders | None = None

    @property
    def outbound_mode(self) -> str:
        """ALLOW_ANY or REGISTRY_ONLY (the zero value, also when the policy was set to null)."""
        policy = self.outbound_traffic_policy
        return (policy.mode if policy is not None else "") or REGISTRY_ONLY

    @property
    def inbound_mode(self) -> str:
        policy = self.inbound_traffic_policy
        return (policy.mode if policy is not None else "") or PASSTHROUGH

    @property
    def trust_domains(self) -> tuple[str, ...]:
        """The mesh's trust domain, then its aliases: what inbound mTLS and principals accept."""
        return tuple(dict.fromkeys((self.trust_domain, *self.trust_domain_aliases)))

    @property
    def mesh_identity(self) -> str:
        """`meshId`, or the trust domain when it is not set, as Istio names the mesh to proxies."""
        return self.mesh_id or self.trust_domain

    def metadata(self, key: str) -> str | None:
        """One `defaultConfig.proxyMetadata` value (ISTIO_META_DNS_CAPTURE, ...)."""
        return self.default_config.view.proxy_metadata.get(key)

    def provider(self, name: str) -> ExtensionProvider | None:
        """The extension provider called `name` (AuthorizationPolicy CUSTOM, Telemetry)."""
        for provider in self.extension_providers:
            if provider.name == name:
                return provider
        return None
