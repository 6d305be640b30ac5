"""The proxy a config is generated for: identity, labels, interception mode, capabilities."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from meshctl.errors import UnknownProxyError
from meshctl.model.node import ROUTER, SIDECAR, ProxyNode, node_id

if TYPE_CHECKING:
    from meshctl.config.kinds.mesh import DefaultConfig, ProxyHeaders, Tracing
    from meshctl.model.registry import Registry
    from meshctl.model.service import Workload

__all__ = [
    "DEFAULT_CLUSTER_ID",
    "GATEWAY_LABEL_VALUES",
    "GATEWAY_NAME_LABEL",
    "GENERIC_SIDECAR",
    "GENERIC_SIDECAR_IP",
    "INJECT_TEMPLATES",
    "INTERCEPTION_ANNOTATION",
    "INTERCEPTION_NONE",
    "INTERCEPTION_REDIRECT",
    "INTERCEPTION_TPROXY",
    "ISTIO_EXTENSIONS",
    "ISTIO_META_PREFIX",
    "ISTIO_VERSION",
    "NodeFlags",
    "PROXY_CONFIG_PARTS",
    "Proxy",
    "agent_metadata",
    "compact",
    "for_node",
    "for_workload",
    "from_environment",
    "generic_sidecar",
    "is_gateway",
    "workload_proxy_config",
    "workload_metadata",
    "workload_of",
]

INTERCEPTION_REDIRECT = "REDIRECT"
INTERCEPTION_TPROXY = "TPROXY"
INTERCEPTION_NONE = "NONE"
ISTIO_VERSION = "1.30.0"
DEFAULT_CLUSTER_ID = "Kubernetes"
"""istiod's CLUSTER_ID when it is not set: the cluster of every workload of a single-cluster mesh."""

# Extensions that only istio-proxy builds carry; plain Envoy rejects configs that use them.
ISTIO_EXTENSIONS = frozenset({"istio.metadata_exchange", "istio.alpn", "istio.stats"})


@dataclass(frozen=True, slots=True)
class NodeFlags:
    """The node metadata settings Istio's listener builders honour, read once from a proxy's
    metadata (the agent's `ISTIO_META_*` environment, `ISTIO_META_` dropped).

    `idle_timeout` (IDLE_TIMEOUT, a Go duration in nanoseconds; None when unset or not a
    duration, which istiod ignores alike) bounds idle connections where no DestinationRule says
    otherwise: tcp_proxy filters and HTTP connection managers. `http10` (HTTP10 exactly "1")
    makes connection managers accept HTTP/1.0. `unprivileged` (UNPRIVILEGED_POD) keeps
    listeners that bind for real off ports below 1024. `inbound_exact_balance` and
    `outbound_exact_balance` (INBOUND_/OUTBOUND_LISTENER_EXACT_BALANCE) balance connections
    exactly across workers on virtualInbound and bound inbound listeners, and on per-port
    outbound listeners. The booleans but HTTP10 are Go's (`true`, `1`, `t`, ...). Hashable:
    cache keys of what reads them hold it.
    """

    idle_timeout: int | None = None
    http10: bool = False
    unprivileged: bool = False
    inbound_exact_balance: bool = False
    outbound_exact_balance: bool = False

    @classmethod
    def of(cls, metadata: Mapping[str, Any]) -> NodeFlags:
        idle = metadata.get(IDLE_TIMEOUT)
        seconds = None
        if isinstance(idle, str) and idle:
            # Loaded only here: an agent builds its bootstrap's node before Envoy's exec, where
            # every module counts (the schema's, once imported at the top, cost 110 ms).
            from meshctl.config.values import parse_duration

            seconds = parse_duration(idle)
        return cls(seconds,
                   metadata.get(HTTP10) == "1",
                   metadata.get(UNPRIVILEGED_POD) in _GO_TRUE,
                   metadata.get(INBOUND_EXACT_BALANCE) in _GO_TRUE,
                   metadata.get(OUTBOUND_EXACT_BALANCE) in _GO_TRUE)


IDLE_TIMEOUT = "IDLE_TIMEOUT"
HTTP10 = "HTTP10"
UNPRIVILEGED_POD = "UNPRIVILEGED_POD"
INBOUND_EXACT_BALANCE = "INBOUND_LISTENER_EXACT_BALANCE"
OUTBOUND_EXACT_BALANCE = "OUTBOUND_LISTENER_EXACT_BALANCE"
_GO_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
"""What Go's strconv.ParseBool reads as true (istiod's StringBool metadata fields)."""
NO_FLAGS = NodeFlags()


@dataclass(frozen=True, slots=True)
class Proxy:
    """Everything generation reads about one proxy.

    `istio_extensions` says whether the proxy is an istio-proxy build: Istio's own filters
    (metadata exchange, ALPN override) are emitted only for proxies that can load them, so the
    same generator drives both istio-proxy sidecars and the plain Envoy that meshctl runs.
    `metadata` is the node metadata the proxy sends (or, offline, the one its agent would);
    `flags` what generation reads of it. `proxy_config` is the ProxyConfig the proxy sends as
    PROXY_CONFIG (the mesh's `defaultConfig` with its pod's `proxy.istio.io/config` over it; as
    compact JSON, so the proxy stays hashable), empty when it sends none, and then the mesh's
    `defaultConfig` holds, as istiod's ProxyConfigOrDefault has it; `proxy_headers` and
    `proxy_tracing` its `proxyHeaders` and `tracing`, each None when it sends no ProxyConfig
    or none of that part (or one istiod could not read).
    """

    id: str
    namespace: str
    ip: str
    type: str = SIDECAR
    dns_domain: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    interception: str = INTERCEPTION_REDIRECT
    istio_version: str = ISTIO_VERSION
    cluster_id: str = DEFAULT_CLUSTER_ID
    workload: Workload | None = None
    istio_extensions: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    verified_identity: str = ""
    proxy_config: str = ""
    flags: NodeFlags = field(init=False, default=NO_FLAGS)

    def __post_init__(self) -> None:
        object.__setattr__(self, "flags", NodeFlags.of(self.metadata) if self.metadata else NO_FLAGS)

    @property
    def proxy_headers(self) -> ProxyHeaders | None:
        # Read when generating, never by the agent that makes the proxy: checking them loads
        # the config schema (110 ms), which would delay its Envoy's start.
        return cast("ProxyHeaders | None", _sent_part(self.proxy_config, "proxyHeaders")) if self.proxy_config else None

    @property
    def proxy_tracing(self) -> Tracing | None:
        return cast("Tracing | None", _sent_part(self.proxy_config, "tracing")) if self.proxy_config else None

    @property
    def pod_name(self) -> str:
        return self.id.rsplit(".", 1)[0]

    @property
    def node_id(self) -> str:
        return node_id(self.type, self.ip, self.id, self.dns_domain)

    @property
    def captures_traffic(self) -> bool:
        return self.interception != INTERCEPTION_NONE and self.type == SIDECAR

    @property
    def is_router(self) -> bool:
        return self.type == ROUTER

    @property
    def verified_namespace(self) -> str:
        """The namespace of the identity the proxy proved (its connection's credential), empty
        when it proved none. Only what a proxy proved may unlock secrets: never its node id."""
        marker = "/ns/"
        if not self.verified_identity.startswith("spiffe://") or marker not in self.verified_identity:
            return ""
        return self.verified_identity.split(marker, 1)[1].split("/", 1)[0]


ISTIO_META_PREFIX = "ISTIO_META_"
PROXY_CONFIG_ANNOTATION = "proxy.istio.io/config"


def agent_metadata(environment: Mapping[str, str]) -> dict[str, str]:
    """The node metadata istio-agent makes of its environment: `ISTIO_META_NAME` becomes `NAME`."""
    return {key[len(ISTIO_META_PREFIX):]: value for key, value in sorted(environment.items())
            if key.startswith(ISTIO_META_PREFIX) and len(key) > len(ISTIO_META_PREFIX)}


PROXY_CONFIG_PARTS = ("proxyHeaders", "tracing")
"""The parts of a proxy's own ProxyConfig that istiod's translation reads (the rest shapes its
bootstrap, its agent or its injection)."""


def from_environment(proxy: Proxy, environment: Mapping[str, str]) -> Proxy:
    """The proxy as istio-agent describes it from its container's environment, which injection
    fills: every `ISTIO_META_*` over the node metadata the proxy already has, and the
    `proxyHeaders` and `tracing` of `PROXY_CONFIG` (the mesh's defaultConfig with the pod's
    annotation merged over it) as its own. A PROXY_CONFIG that is not a JSON object sets
    neither: the mesh's then hold, as they do for a proxy that sends none."""
    metadata = {**proxy.metadata, **agent_metadata(environment)}
    proxy_config = proxy.proxy_config
    text = environment.get("PROXY_CONFIG", "")
    if text:
        try:
            sent = json.loads(text)
        except ValueError:
            sent = None
        parts = _parts_of(sent)
        if parts:
            proxy_config = compact(parts)
    if metadata == proxy.metadata and proxy_config == proxy.proxy_config:
        return proxy
    return replace(proxy, metadata=metadata, proxy_config=proxy_config)


def workload_metadata(workload: Workload, proxy_metadata: Mapping[str, str]) -> dict[str, str]:
    """The node metadata a workload's agent sends of its environment: the mesh's
    `defaultConfig.proxyMetadata` (`proxy_metadata`) with the `proxyMetadata` of the pod's
    `proxy.istio.io/config` over it, which the injector puts in istio-proxy's environment (how
    a pod sets ISTIO_META_IDLE_TIMEOUT). An annotation the injector would refuse adds nothing:
    such a pod gets no sidecar to send it."""
    environment = dict(proxy_metadata)
    own = _annotation(workload).get("proxyMetadata")
    if isinstance(own, dict):
        environment.update({str(key): str(value) for key, value in own.items()})
    return agent_metadata(environment)


def workload_proxy_config(workload: Workload, default: DefaultConfig) -> str:
    """The parts of PROXY_CONFIG generation reads (`PROXY_CONFIG_PARTS`, as `Proxy.proxy_config`)
    that a workload's proxy sends when its pod's `proxy.istio.io/config` sets any of them: the
    pod's merged over the mesh's (`default`: its defaultConfig) field by field, as the
    injector merges the annotation. Empty when the pod sets none: the mesh's then hold."""
    from meshctl.inject.proxyconfig import merged

    own = _parts_of(_annotation(workload))
    if not own:
        return ""
    return compact({key: merged(default.fields.get(key) or {}, own.get(key, {})) for key in PROXY_CONFIG_PARTS})


def _parts_of(config: Any) -> dict[str, Any]:
    """The `PROXY_CONFIG_PARTS` a ProxyConfig document sets as objects (none when it is not one)."""
    if not isinstance(config, dict):
        return {}
    return {key: config[key] for key in PROXY_CONFIG_PARTS if isinstance(config.get(key), dict)}


def compact(config: Mapping[str, Any]) -> str:
    """A ProxyConfig as `Proxy.proxy_config` holds it: one canonical JSON text per content."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=512)
def _sent_part(proxy_config: str, key: str) -> ProxyHeaders | Tracing | None:
    """One part (`PROXY_CONFIG_PARTS`) of a `Proxy.proxy_config` as its typed view, checked once
    per distinct text: the ProxyConfig's defaults when it leaves the part out (its own config
    holds, not the mesh's), None when the part is not valid."""
    from meshctl.config.kinds.mesh import ProxyHeaders, Tracing

    kind: type[ProxyHeaders] | type[Tracing] = ProxyHeaders if key == "proxyHeaders" else Tracing
    value = json.loads(proxy_config).get(key, {})
    if not isinstance(value, dict):
        return None
    problems: list[str] = []
    kind.SCHEMA.check(value, (), lambda path, message: problems.append(message))
    return None if problems else kind.of(value)


def _annotation(workload: Workload) -> dict[str, Any]:
    """The pod's `proxy.istio.io/config`, empty when it has none or one the injector would refuse."""
    from meshctl.inject.proxyconfig import ProxyConfigError, parse_annotation

    annotation = workload.annotations.get(PROXY_CONFIG_ANNOTATION)
    if not annotation:
        return {}
    try:
        return parse_annotation(annotation)
    except ProxyConfigError:
        return {}


INTERCEPTION_ANNOTATION = "sidecar.istio.io/interceptionMode"
# What marks a pod as a gateway (its Envoy runs as `pilot-agent proxy router`): the `istio` label
# of Istio's gateway charts, the injection template of the `gateway` chart, and the label Istio's
# automated deployment puts on the pods of a Gateway API Gateway.
GATEWAY_LABEL_VALUES = frozenset({"ingressgateway", "egressgateway", "eastwestgateway"})
INJECT_TEMPLATES = "inject.istio.io/templates"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


def is_gateway(workload: Workload) -> bool:
    """Whether a workload's proxy is a gateway (node type `router`) rather than a sidecar.

    Istio knows from the proxy's own command line; offline input has no command line, so the
    marks Istio's installers put on gateway pods decide: the `istio: ingressgateway` (or
    `egressgateway`, `eastwestgateway`) label, the `gateway` injection template, or the
    `gateway.networking.k8s.io/gateway-name` label of a Gateway API gateway's pods.
    """
    if workload.labels.get("istio") in GATEWAY_LABEL_VALUES or GATEWAY_NAME_LABEL in workload.labels:
        return True
    templates = workload.annotations.get(INJECT_TEMPLATES, "")
    return "gateway" in (template.strip() for template in templates.split(","))


def for_workload(workload: Workload, *, interception: str | None = None,
                 istio_extensions: bool = False, domain: str = "cluster.local",
                 trust_domain: str = "cluster.local", metadata: Mapping[str, Any] | None = None) -> Proxy:
    """The proxy of a workload, as the injector would configure it: a gateway (router) for a
    gateway pod, a sidecar otherwise, whose interception mode comes from the pod's
    `sidecar.istio.io/interceptionMode` annotation unless given. A gateway's identity counts as
    proven: offline, it renders what the gateway gets once connected with its credential."""
    router = is_gateway(workload)
    if interception is None:
        interception = workload.annotations.get(INTERCEPTION_ANNOTATION, INTERCEPTION_REDIRECT)
    return Proxy(
        id=workload.proxy_id,
        namespace=workload.namespace,
        ip=workload.ip,
        type=ROUTER if router else SIDECAR,
        dns_domain=f"{workload.namespace}.svc.{domain}",
        labels=dict(workload.labels),
        interception=INTERCEPTION_NONE if router else interception,
        workload=workload,
        istio_extensions=istio_extensions,
        verified_identity=workload.spiffe_id(trust_domain) if router else "",
        metadata=dict(metadata or {}),
    )


def workload_of(node: ProxyNode, registry: Registry) -> Workload | None:
    """The workload a connected node runs in, as istiod finds a proxy's pod: by the proxy id
    `POD.NAMESPACE` (the namespace must be the one the node's metadata names), else by address:
    the ready pod of the node's namespace at its first instance IP (a bootstrap whose id does
    not name the pod, `ENABLE_PROXY_FIND_POD_BY_IP` in istiod)."""
    claimed = str(node.metadata.get("NAMESPACE") or "")
    workload = registry.workload(node.id)
    if workload is not None and (not claimed or workload.namespace == claimed):
        return workload
    if node.namespace and node.ips:
        return registry.ready_pod_at(node.namespace, node.ips[0])
    return None


def for_node(node: ProxyNode, workload: Workload | None, domain: str = "cluster.local",
             verified_identity: str = "") -> Proxy:
    """The proxy a connected node is: its workload from the registry, refined by node metadata.

    A node whose pod is not in the registry is still served from its metadata (namespace and
    labels), as istiod serves VMs without WorkloadEntries, but only when it names a namespace;
    otherwise there is nothing to base its config on. The node type (sidecar or router) is the
    node's own, as in Istio; `verified_identity` is what its connection proved (the server's
    word, never the node's), empty when it proved nothing. The node's metadata is the proxy's
    (`Proxy.flags`: what generation honours of it).
    """
    interception = node.metadata.get("INTERCEPTION_MODE")
    if workload is not None:
        proxy = for_workload(workload, interception=interception, istio_extensions=node.istio_extensions, domain=domain)
    elif node.namespace and "NAMESPACE" in node.metadata:
        proxy = Proxy(id=node.id, namespace=node.namespace, ip=node.ips[0] if node.ips else "",
                      dns_domain=node.dns_domain, labels=dict(node.labels),
                      interception=interception or INTERCEPTION_REDIRECT, istio_extensions=node.istio_extensions)
    else:
        raise UnknownProxyError(f"proxy {node.id} is not a workload in the configuration")
    sent = node.metadata.get("PROXY_CONFIG")
    proxy = replace(proxy, type=node.type, verified_identity=verified_identity, metadata=dict(node.metadata),
                    proxy_config=compact(sent) if isinstance(sent, dict) else "")
    if node.type == ROUTER:
        proxy = replace(proxy, interception=INTERCEPTION_NONE)
    if node.cluster_id:
        proxy = replace(proxy, cluster_id=node.cluster_id)
    if node.istio_version:
        proxy = replace(proxy, istio_version=node.istio_version)
    return proxy


GENERIC_SIDECAR = "sidecar"
"""The pod name of the generic sidecar `meshctl translate` renders for without `--proxy`."""


def generic_sidecar(namespace: str, *, istio_extensions: bool = False, domain: str = "cluster.local") -> Proxy:
    """A sidecar of no workload in `namespace`: no labels (only namespace-wide Sidecar and
    policies apply), no services of its own (so no inbound service chains), the default
    interception. What every proxy of the namespace has in common: its outbound routes,
    clusters and listeners."""
    return Proxy(id=f"{GENERIC_SIDECAR}.{namespace}", namespace=namespace, ip=GENERIC_SIDECAR_IP,
                 dns_domain=f"{namespace}.svc.{domain}", istio_extensions=istio_extensions)


GENERIC_SIDECAR_IP = "192.0.2.10"
"""The generic sidecar's address: from TEST-NET-1, so it is never a workload's."""
