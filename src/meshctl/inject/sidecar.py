"""The sidecar Istio's `sidecar` injection template renders for a pod, with meshctl's
containers in it: `istio-init` runs `meshctl iptables`, `istio-proxy` runs `meshctl agent`.

Names, ports, probes, security contexts, environment and volumes are Istio's (its
`injection-template.yaml`, kubernetes-and-capture §3.5-3.6), so that tools reading an injected
pod (`kubectl logs -c istio-proxy`, Prometheus' port 15090, `istioctl` reading
`ISTIO_META_*`) find what they expect. Left out are the parts that would promise what the
agent does not do: the Go runtime's variables, the CRL and credential sockets, app probe
rewriting and Prometheus merging (the agent serves neither `/app-health` nor merged metrics).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshctl.inject import annotations as ann
from meshctl.inject.agent import Capture, agent_args, iptables_args
from meshctl.inject.proxyconfig import ProxyConfig
from meshctl.inject.settings import PROMETHEUS_PORT, PROXY_UID, READINESS_PORT, InjectSettings

__all__ = [
    "INIT_NAME",
    "Owner",
    "PROXY_NAME",
    "Sidecar",
    "VOLUMES",
    "injected_labels",
    "native_sidecar",
    "pod_ports",
    "render",
]

INIT_NAME = "istio-init"
PROXY_NAME = "istio-proxy"
_PORT_KEYS = ("name", "hostPort", "containerPort", "protocol", "hostIP")  # Go's ContainerPort field order

# (volume, where istio-proxy mounts it), in the template's order of volumes.
VOLUMES: tuple[tuple[dict[str, Any], str], ...] = (
    ({"name": "workload-socket", "emptyDir": {}}, "/var/run/secrets/workload-spiffe-uds"),
    ({"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}, "/etc/istio/proxy"),
    ({"name": "istio-data", "emptyDir": {}}, "/var/lib/istio/data"),
    ({"name": "istio-podinfo", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
    ]}}, "/etc/istio/pod"),
    ({"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}}, "/var/run/secrets/tokens"),
    ({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}, "/var/run/secrets/istio"),
)
_MOUNT_ORDER = ("workload-socket", "istiod-ca-cert", "istio-data", "istio-envoy", "istio-token", "istio-podinfo")


@dataclass(frozen=True, slots=True)
class Owner:
    """The workload a pod belongs to (Istio's deploy metadata): `ISTIO_META_OWNER` and the
    workload name come from it."""

    kind: str
    api_version: str
    name: str


@dataclass(frozen=True, slots=True)
class Sidecar:
    """What the template adds to a pod: containers, volumes, labels, annotations."""

    init_containers: tuple[dict[str, Any], ...]
    containers: tuple[dict[str, Any], ...]
    volumes: tuple[dict[str, Any], ...]
    labels: dict[str, str]
    native: bool

    @property
    def names(self) -> tuple[list[str], list[str], list[str]]:
        """Names of the injected init containers, containers and volumes."""
        return ([c["name"] for c in self.init_containers], [c["name"] for c in self.containers],
                [v["name"] for v in self.volumes])


def render(settings: InjectSettings, metadata: Mapping[str, Any], spec: Mapping[str, Any], owner: Owner,
           namespace: str, proxy_config: ProxyConfig) -> Sidecar:
    """The sidecar for a pod (`metadata` and `spec`, already stripped of any earlier injection)."""
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    pod_labels: Mapping[str, str] = metadata.get("labels") or {}
    mode = annotations.get(ann.INTERCEPTION_MODE, proxy_config.interception_mode)
    capture = Capture(mode, proxy_config.status_port)
    labels = injected_labels(pod_labels, owner)
    native = native_sidecar(settings, annotations)
    resources = _resources(settings, annotations)
    init = []
    if mode != "NONE":
        init.append(_init_container(settings, annotations, capture, resources, proxy_config))
    proxy = _proxy_container(settings, annotations, {**pod_labels, **labels}, capture, resources, proxy_config,
                             spec, owner, namespace)
    if native:
        proxy["restartPolicy"] = "Always"
        init.append(proxy)
    volumes = tuple(volume for volume, _ in VOLUMES)
    return Sidecar(tuple(init), () if native else (proxy,), volumes, labels, native)


def native_sidecar(settings: InjectSettings, annotations: Mapping[str, str]) -> bool:
    """istio-proxy as a Kubernetes native sidecar (an init container that keeps running):
    `sidecar.istio.io/nativeSidecar` decides ("false" turns it off, any other value on), else
    the setting."""
    value = annotations.get(ann.NATIVE_SIDECAR, "")
    return value != "false" if value else settings.native_sidecars


def injected_labels(labels: Mapping[str, str], owner: Owner) -> dict[str, str]:
    """`security.istio.io/tlsMode` and the canonical service name and revision, unless set."""
    name = (labels.get("service.istio.io/canonical-name") or labels.get("app.kubernetes.io/name")
            or labels.get("app") or owner.name)[:63].strip("-_.")
    revision = (labels.get("service.istio.io/canonical-revision") or labels.get("app.kubernetes.io/version")
                or labels.get("version") or "latest")
    return {"security.istio.io/tlsMode": labels.get("security.istio.io/tlsMode", "istio"),
            "service.istio.io/canonical-name": name, "service.istio.io/canonical-revision": revision}


def _resources(settings: InjectSettings, annotations: Mapping[str, str]) -> dict[str, Any]:
    """The proxy's resources: the annotations, if any is set, replace the settings entirely."""
    keys = ((ann.PROXY_CPU, "requests", "cpu"), (ann.PROXY_MEMORY, "requests", "memory"),
            (ann.PROXY_CPU_LIMIT, "limits", "cpu"), (ann.PROXY_MEMORY_LIMIT, "limits", "memory"))
    if any(name in annotations for name, _, _ in keys):
        resources: dict[str, dict[str, str]] = {}
        for name, section, resource in keys:
            if name in annotations:
                resources.setdefault(section, {})[resource] = annotations[name]
        return resources
    own = settings.resources
    return {"requests": {"cpu": own.cpu, "memory": own.memory},
            "limits": {"cpu": own.cpu_limit, "memory": own.memory_limit}}


def _image(settings: InjectSettings, annotations: Mapping[str, str]) -> str:
    image = annotations.get(ann.PROXY_IMAGE, "")
    return image if "/" in image else settings.image


def _init_container(settings: InjectSettings, annotations: Mapping[str, str], capture: Capture,
                    resources: dict[str, Any], proxy_config: ProxyConfig) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": INIT_NAME,
        "image": _image(settings, annotations),
        "args": iptables_args(settings, annotations, capture),
    }
    if proxy_config.metadata:
        container["env"] = [{"name": key, "value": value} for key, value in sorted(proxy_config.metadata.items())]
    container["resources"] = json.loads(json.dumps(resources))
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": False,
        "runAsGroup": 0,
        "runAsNonRoot": False,
        "runAsUser": 0,
    }
    return container


def _field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def pod_ports(containers: Sequence[Mapping[str, Any]]) -> str:
    """`ISTIO_META_POD_PORTS`: every port of every container, as Istio's template writes it."""
    entries = []
    for container in containers:
        for port in container.get("ports") or ():
            ordered = {key: port[key] for key in _PORT_KEYS if port.get(key) not in (None, "", 0)}
            if ordered:
                entries.append(json.dumps(ordered, separators=(",", ":")))
    return "[" + "".join(f"\n    {',' if index else ''}{entry}" for index, entry in enumerate(entries)) + "\n]"


def _environment(settings: InjectSettings, capture: Capture, proxy_config: ProxyConfig, spec: Mapping[str, Any],
                 owner: Owner, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    containers = [c for c in spec.get("containers") or () if c.get("name") != PROXY_NAME]
    env: list[dict[str, Any]] = [
        {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
        {"name": "CA_ADDR", "value": settings.ca_address},
        _field("POD_NAME", "metadata.name"),
        _field("POD_NAMESPACE", "metadata.namespace"),
        _field("INSTANCE_IP", "status.podIP"),
        _field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        _field("HOST_IP", "status.hostIP"),
        {"name": "ISTIO_CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"divisor": "1", "resource": "limits.cpu"}}},
        {"name": "PROXY_CONFIG", "value": proxy_config.to_env()},
        {"name": "ISTIO_META_POD_PORTS", "value": pod_ports(containers)},
        {"name": "ISTIO_META_APP_CONTAINERS", "value": ",".join(str(c.get("name")) for c in containers)},
        {"name": "ISTIO_META_CLUSTER_ID", "value": settings.cluster_id},
        _field("ISTIO_META_NODE_NAME", "spec.nodeName"),
        {"name": "ISTIO_META_INTERCEPTION_MODE", "value": capture.mode},
    ]
    network = labels.get("topology.istio.io/network") or settings.network
    if network:
        env.append({"name": "ISTIO_META_NETWORK", "value": network})
    workload = labels.get("service.istio.io/workload-name") or owner.name
    if workload:
        env.append({"name": "ISTIO_META_WORKLOAD_NAME", "value": workload})
    if owner.api_version and owner.name:
        env.append({"name": "ISTIO_META_OWNER", "value": f"kubernetes://apis/{owner.api_version}/namespaces/"
                                                          f"{namespace or 'default'}/{owner.kind.lower()}s/{owner.name}"})
    mesh = settings.mesh
    env += [{"name": "ISTIO_META_MESH_ID", "value": mesh.mesh_identity},
            {"name": "TRUST_DOMAIN", "value": mesh.trust_domain}]
    env += [{"name": key, "value": value} for key, value in sorted(proxy_config.metadata.items())]
    return env


def _http_probe(**timing: int) -> dict[str, Any]:
    probe: dict[str, Any] = {"httpGet": {"path": "/healthz/ready", "port": READINESS_PORT}}
    probe.update((key, value) for key, value in timing.items() if value)
    return probe


def _proxy_container(settings: InjectSettings, annotations: Mapping[str, str], labels: Mapping[str, str],
                     capture: Capture, resources: dict[str, Any], proxy_config: ProxyConfig,
                     spec: Mapping[str, Any], owner: Owner, namespace: str) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": PROXY_NAME,
        "image": _image(settings, annotations),
        "args": agent_args(settings, annotations, labels, capture, proxy_config),
        "env": _environment(settings, capture, proxy_config, spec, owner, namespace, labels),
        "ports": [{"containerPort": PROMETHEUS_PORT, "name": "http-envoy-prom", "protocol": "TCP"}],
    }
    if capture.status_port:
        readiness = settings.readiness
        container["readinessProbe"] = _http_probe(
            initialDelaySeconds=int(annotations.get(ann.READINESS_INITIAL_DELAY, readiness.initial_delay)),
            periodSeconds=int(annotations.get(ann.READINESS_PERIOD, readiness.period)),
            timeoutSeconds=3,
            failureThreshold=int(annotations.get(ann.READINESS_FAILURE_THRESHOLD, readiness.failure_threshold)))
        if settings.startup_probe:
            container["startupProbe"] = _http_probe(periodSeconds=1, timeoutSeconds=3, failureThreshold=600)
    container["resources"] = resources
    tproxy = capture.mode == "TPROXY"
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]} if tproxy else {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsGroup": PROXY_UID,
        "runAsNonRoot": not tproxy,
        "runAsUser": 0 if tproxy else PROXY_UID,
    }
    mounts = {volume["name"]: path for volume, path in VOLUMES}
    container["volumeMounts"] = [{"mountPath": mounts[name], "name": name} for name in _MOUNT_ORDER]
    return container
