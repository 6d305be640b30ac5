"""The Kubernetes kinds meshctl reads to build its service registry, as typed views.

Field lists follow the Kubernetes API so that a typo (`selctor`, `contianers`) is an error, as it
is for `kubectl apply --validate=strict`. Parts meshctl never reads (probes, resources, volumes)
are accepted as free-form values and left out of the views. Class names are the API's own
(`ServiceSpec`, `PodStatus`); fields whose wire name is not the camelCase of a Python name
(`clusterIP`, `podIPs`) say so with `field(json=...)`. Defaults the API server would fill in
(`protocol: TCP`, `replicas: 1`, `type: ClusterIP`) are the views' defaults.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Annotated, Any

from meshctl.config.kinds.common import LABELS, PORT, POSITIVE_INT32
from meshctl.config.messages import Message, Parse, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, Free, Int, List, Map, Report, Str
from meshctl.config.values import is_ip

__all__ = [
    "CLUSTER_IP",
    "Container",
    "ContainerPort",
    "DeploymentSpec",
    "EndpointAddress",
    "EndpointConditions",
    "EndpointPort",
    "EndpointSlice",
    "EndpointSubset",
    "Endpoints",
    "INT_OR_STRING",
    "IP",
    "LabelSelector",
    "LabelSelectorRequirement",
    "LoadBalancerIngress",
    "LoadBalancerStatus",
    "NODE_PORT",
    "NamespaceSpec",
    "NodeSpec",
    "ObjectMeta",
    "ObjectReference",
    "PROTOCOL",
    "PodCondition",
    "PodIP",
    "PodSpec",
    "PodStatus",
    "PodTemplateSpec",
    "Secret",
    "SecretValue",
    "ServiceAccount",
    "ServicePort",
    "ServiceSpec",
    "ServiceStatus",
    "SliceEndpoint",
    "SlicePort",
]

PROTOCOL = Enum("TCP", "UDP", "SCTP")


def _ip_rule(value: str, path: FieldPath, report: Report) -> None:
    if not is_ip(value):
        report(path, f"invalid IP address {value!r}")


def _cluster_ip_rule(value: str, path: FieldPath, report: Report) -> None:
    if value != "None" and value != "" and not is_ip(value):
        report(path, f"invalid clusterIP {value!r}: must be an IP address, 'None' or empty")


IP = Str(rules=[_ip_rule])
CLUSTER_IP = Str(rules=[_cluster_ip_rule])
INT_OR_STRING = Free()  # validated by _service_port_rule
NODE_PORT = Int(0, 65535)


def _service_port_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    target = value.get("targetPort")
    if target is None:
        return
    if isinstance(target, bool) or not isinstance(target, (int, str)):
        report((*path, "targetPort"), "expected a port number or a port name")
    elif isinstance(target, int) and not 1 <= target <= 65535:
        report((*path, "targetPort"), f"must be between 1 and 65535, got {target}")
    elif isinstance(target, str) and not target:
        report((*path, "targetPort"), "must not be empty")


@message(required=["port"], rules=[_service_port_rule])
class ServicePort(Message):
    name: str = ""
    port: int = field(PORT)
    target_port: int | str | None = field(INT_OR_STRING)
    protocol: str = field(PROTOCOL, default="TCP")
    app_protocol: str = ""
    node_port: int | None = field(NODE_PORT)


def _service_ports_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    if len(value) > 1:
        for index, port in enumerate(value):
            if not port.get("name"):
                report((*path, index, "name"), "required when a Service has more than one port")
    seen: set[str] = set()
    numbers: dict[tuple[int, str], int] = {}
    for index, port in enumerate(value):
        name = port.get("name")
        if name and name in seen:
            report((*path, index, "name"), f"duplicate port name {name!r}")
        if name:
            seen.add(name)
        key = (port["port"], port.get("protocol") or "TCP")
        if key in numbers:
            report((*path, index, "port"), f"duplicate port {key[0]}/{key[1]}: ports[{numbers[key]}] already "
                                           "defines it (a port number may repeat only with another protocol)")
        numbers.setdefault(key, index)


def _service_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    kind = value.get("type", "ClusterIP")
    if kind == "ExternalName" and not value.get("externalName"):
        report((*path, "externalName"), "required for type ExternalName")


@message(open=True)
class LoadBalancerIngress(Message):
    ip: str = ""
    hostname: str = ""


@message(open=True)
class LoadBalancerStatus(Message):
    ingress: tuple[LoadBalancerIngress, ...]


@message(open=True)
class ServiceStatus(Message):
    """What meshctl reads of a Service's status: its load balancer's addresses (a Gateway API
    Gateway's `status.addresses`)."""

    load_balancer: LoadBalancerStatus | None = None

    @property
    def addresses(self) -> tuple[str, ...]:
        if self.load_balancer is None:
            return ()
        return tuple(a for i in self.load_balancer.ingress if (a := i.ip or i.hostname))


@message(rules=[_service_rule], free=["sessionAffinityConfig"])
class ServiceSpec(Message):
    ports: tuple[ServicePort, ...] = field(List(ServicePort.SCHEMA, rules=[_service_ports_rule]))
    selector: Mapping[str, str] = field(LABELS)
    cluster_ip: str = field(CLUSTER_IP, json="clusterIP")
    cluster_ips: tuple[str, ...] = field(List(CLUSTER_IP), json="clusterIPs")
    type: str = field(Enum("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"), default="ClusterIP")
    external_name: str = ""
    external_ips: tuple[str, ...] = field(List(IP), json="externalIPs")
    publish_not_ready_addresses: bool = False
    session_affinity: str = field(Enum("None", "ClientIP"))
    external_traffic_policy: str = field(Enum("Cluster", "Local"))
    internal_traffic_policy: str = field(Enum("Cluster", "Local"))
    ip_families: tuple[str, ...] = field(List(Enum("IPv4", "IPv6")))
    ip_family_policy: str = field(Enum("SingleStack", "PreferDualStack", "RequireDualStack"))
    load_balancer_ip: str = field(json="loadBalancerIP")
    load_balancer_source_ranges: tuple[str, ...]
    load_balancer_class: str = ""
    allocate_load_balancer_node_ports: bool | None = None
    health_check_node_port: int | None = field(NODE_PORT)
    traffic_distribution: str = ""


@message
class ObjectReference(Message):
    kind: str = ""
    name: str = ""
    namespace: str = ""
    uid: str = ""
    api_version: str = ""
    resource_version: str = ""
    field_path: str = ""


@message(required=["port"])
class EndpointPort(Message):
    name: str = ""
    port: int = field(PORT)
    protocol: str = field(PROTOCOL, default="TCP")
    app_protocol: str = ""


@message(required=["ip"])
class EndpointAddress(Message):
    ip: str = field(IP)
    hostname: str = ""
    node_name: str = ""
    target_ref: ObjectReference | None = None


@message
class EndpointSubset(Message):
    addresses: tuple[EndpointAddress, ...]
    not_ready_addresses: tuple[EndpointAddress, ...]
    ports: tuple[EndpointPort, ...]


@message
class Endpoints(Message):
    """core/v1 Endpoints: its fields sit at the top level of the object, not under `spec`."""

    subsets: tuple[EndpointSubset, ...]


@message
class EndpointConditions(Message):
    """Unset conditions mean "unknown", which Kubernetes reads as ready."""

    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


@message(required=["addresses"], free=["hints"])
class SliceEndpoint(Message):
    """discovery/v1 Endpoint (named apart from core/v1's endpoint types)."""

    addresses: tuple[str, ...] = field(List(Str(min_len=1), min_items=1))
    conditions: EndpointConditions | None = None
    hostname: str = ""
    node_name: str = ""
    zone: str = ""
    target_ref: ObjectReference | None = None
    deprecated_topology: Mapping[str, str]


@message
class SlicePort(Message):
    """discovery/v1 EndpointPort: an absent port number means "all ports"."""

    name: str = ""
    port: int | None = field(NODE_PORT)
    protocol: str = field(PROTOCOL, default="TCP")
    app_protocol: str = ""


@message(required=["addressType"])
class EndpointSlice(Message):
    """discovery/v1 EndpointSlice: its fields sit at the top level of the object, not under `spec`."""

    address_type: str = field(Enum("IPv4", "IPv6", "FQDN"))
    endpoints: tuple[SliceEndpoint, ...]
    ports: tuple[SlicePort, ...]


@message(required=["containerPort"])
class ContainerPort(Message):
    name: str = ""
    container_port: int = field(PORT)
    protocol: str = field(PROTOCOL, default="TCP")
    host_port: int | None = field(NODE_PORT)
    host_ip: str = field(json="hostIP")


_CONTAINER_FREE = (
    "args", "command", "env", "envFrom", "imagePullPolicy", "lifecycle", "livenessProbe",
    "readinessProbe", "resizePolicy", "resources", "restartPolicy", "restartPolicyRules",
    "securityContext", "startupProbe", "stdin", "stdinOnce", "terminationMessagePath",
    "terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts", "workingDir",
)


@message(required=["name"], free=_CONTAINER_FREE)
class Container(Message):
    name: str = field(Str(min_len=1))
    image: str = ""
    ports: tuple[ContainerPort, ...]


_POD_SPEC_FREE = (
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "dnsConfig", "dnsPolicy",
    "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC", "hostPID",
    "hostUsers", "hostname", "hostnameOverride", "imagePullSecrets", "nodeSelector", "os",
    "overhead", "preemptionPolicy", "priority", "priorityClassName", "readinessGates",
    "resourceClaims", "resources", "restartPolicy", "runtimeClassName", "schedulerName",
    "schedulingGates", "securityContext", "setHostnameAsFQDN", "shareProcessNamespace",
    "subdomain", "terminationGracePeriodSeconds", "tolerations", "topologySpreadConstraints",
    "volumes",
)


@message(required=["containers"], free=_POD_SPEC_FREE)
class PodSpec(Message):
    containers: tuple[Container, ...] = field(List(Container.SCHEMA, min_items=1))
    init_containers: tuple[Container, ...]
    service_account_name: str = ""
    service_account: str = ""
    node_name: str = ""
    host_network: bool = False

    @property
    def account(self) -> str:
        """The pod's service account: `serviceAccountName`, its deprecated alias, or `default`."""
        return self.service_account_name or self.service_account or "default"

    def named_ports(self) -> dict[str, int]:
        """Container ports by name (the first of a name wins), as named targetPorts resolve."""
        ports: dict[str, int] = {}
        for container in self.containers:
            for port in container.ports:
                if port.name:
                    ports.setdefault(port.name, port.container_port)
        return ports


@message
class PodIP(Message):
    ip: str = field(IP)


@message(free=["lastProbeTime", "lastTransitionTime", "reason", "message", "observedGeneration"])
class PodCondition(Message):
    type: str = ""
    status: str = ""


@message(open=True, free=["hostIPs"])
class PodStatus(Message):
    """What the kubelet reports; other status fields (containerStatuses, qosClass) pass unread."""

    pod_ip: str = field(IP, json="podIP")
    pod_ips: tuple[PodIP, ...] = field(json="podIPs")
    host_ip: str = field(json="hostIP")
    phase: str = field(Enum("Pending", "Running", "Succeeded", "Failed", "Unknown"), default="Running")
    conditions: tuple[PodCondition, ...]

    @property
    def ready(self) -> bool:
        """Running and not reported unready: the pods istiod indexes by IP (a pod without a
        Ready condition, as offline input often is, counts as ready)."""
        return self.phase == "Running" and all(c.status == "True" for c in self.conditions if c.type == "Ready")


@message(required=["key", "operator"])
class LabelSelectorRequirement(Message):
    key: str = field(Str(min_len=1))
    operator: str = field(Enum("In", "NotIn", "Exists", "DoesNotExist"))
    values: tuple[str, ...]


@message
class LabelSelector(Message):
    match_labels: Mapping[str, str] = field(LABELS)
    match_expressions: tuple[LabelSelectorRequirement, ...]


@message(free=["creationTimestamp"])
class ObjectMeta(Message):
    """The part of a pod template's metadata a Deployment's pods inherit."""

    labels: Mapping[str, str] = field(LABELS)
    annotations: Mapping[str, str] = field(Map(Str()))
    name: str = ""
    namespace: str = ""


@message(required=["spec"])
class PodTemplateSpec(Message):
    metadata: ObjectMeta | None = None
    spec: PodSpec


def _deployment_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    wanted = (value.get("selector") or {}).get("matchLabels") or {}
    labels = ((value.get("template") or {}).get("metadata") or {}).get("labels") or {}
    for key, item in wanted.items():
        if labels.get(key) != item:
            report((*path, "selector", "matchLabels", key),
                   "selector does not match the template labels")


@message(required=["selector", "template"], rules=[_deployment_rule], free=["strategy"])
class DeploymentSpec(Message):
    replicas: int = field(Int(0, 10_000), default=1)
    selector: LabelSelector
    template: PodTemplateSpec
    min_ready_seconds: int | None = field(POSITIVE_INT32)
    revision_history_limit: int | None = field(POSITIVE_INT32)
    progress_deadline_seconds: int | None = field(POSITIVE_INT32)
    paused: bool = False


@message
class NamespaceSpec(Message):
    finalizers: tuple[str, ...]


@message(open=True)
class NodeSpec(Message):
    """core/v1 Node: only its labels are read (its topology: analysis, and the locality of the
    pods it runs, istiod's `getPodLocality`), never its spec."""


@message
class ServiceAccount(Message):
    """core/v1 ServiceAccount: its fields sit at the top level of the object; meshctl reads none."""

    secrets: tuple[Any, ...]
    image_pull_secrets: tuple[Any, ...]
    automount_service_account_token: bool | None = None


class SecretValue:
    """One value of a Secret: bytes that never show in a repr, a log line or a message.

    A gateway's certificate key is the operator's secret; the loader reads it once, here, and
    everything else handles it through this wrapper, which prints as its size only.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        """The bytes themselves: only for the message that carries them to the proxy."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"<secret value, {len(self._value)} bytes>"


def _base64_rule(value: str, path: FieldPath, report: Report) -> None:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        report(path, "not valid base64 (Secret data is base64; put plain text under stringData); "
                     "the value is not shown, it may be a key")


def _decoded(values: Mapping[str, str]) -> Mapping[str, SecretValue]:
    return {key: SecretValue(base64.b64decode(value)) for key, value in values.items()}


def _encoded(values: Mapping[str, str]) -> Mapping[str, SecretValue]:
    return {key: SecretValue(value.encode()) for key, value in values.items()}


@message
class Secret(Message):
    """core/v1 Secret (its fields sit at the top level of the object): what a gateway's
    `credentialName` names. `stringData` overrides `data` key by key, as the API server merges
    them."""

    type: str = ""
    data: Annotated[Mapping[str, SecretValue], Parse(_decoded)] = field(Map(Str(rules=[_base64_rule])))
    string_data: Annotated[Mapping[str, SecretValue], Parse(_encoded)] = field(Map(Str()))
    immutable: bool | None = None

    def value(self, key: str) -> SecretValue | None:
        return self.string_data.get(key) or self.data.get(key)
