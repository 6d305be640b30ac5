"""Schemas of the Kubernetes kinds meshctl reads to build its service registry.

Field lists follow the Kubernetes API so that a typo (`selctor`, `contianers`) is an error, as it
is for `kubectl apply --validate=strict`. Parts meshctl never reads (probes, resources, volumes)
are accepted as free-form values.
"""

from __future__ import annotations

from typing import Any

from meshctl.config.kinds.common import LABELS, PORT
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Bool, Enum, Free, Int, List, Map, Obj, Report, Str
from meshctl.config.values import is_ip

PROTOCOL = Enum("TCP", "UDP", "SCTP")


def _ip_rule(value: str, path: FieldPath, report: Report) -> None:
    if not is_ip(value):
        report(path, f"invalid IP address {value!r}")


def _cluster_ip_rule(value: str, path: FieldPath, report: Report) -> None:
    if value != "None" and value != "" and not is_ip(value):
        report(path, f"invalid clusterIP {value!r}: must be an IP address, 'None' or empty")


IP = Str(rules=[_ip_rule])
INT_OR_STRING = Free()  # validated by _target_port_rule


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


SERVICE_PORT = Obj(
    {
        "name": Str(),
        "port": PORT,
        "targetPort": INT_OR_STRING,
        "protocol": PROTOCOL,
        "appProtocol": Str(),
        "nodePort": Int(0, 65535),
    },
    required=["port"],
    rules=[_service_port_rule],
)


def _service_ports_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    if len(value) > 1:
        for index, port in enumerate(value):
            if not port.get("name"):
                report((*path, index, "name"), "required when a Service has more than one port")
    seen: set[str] = set()
    for index, port in enumerate(value):
        name = port.get("name")
        if name and name in seen:
            report((*path, index, "name"), f"duplicate port name {name!r}")
        if name:
            seen.add(name)


def _service_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    kind = value.get("type", "ClusterIP")
    if kind == "ExternalName" and not value.get("externalName"):
        report((*path, "externalName"), "required for type ExternalName")


SERVICE = Obj(
    {
        "ports": List(SERVICE_PORT, rules=[_service_ports_rule]),
        "selector": LABELS,
        "clusterIP": Str(rules=[_cluster_ip_rule]),
        "clusterIPs": List(Str(rules=[_cluster_ip_rule])),
        "type": Enum("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
        "externalName": Str(),
        "externalIPs": List(IP),
        "publishNotReadyAddresses": Bool(),
        "sessionAffinity": Enum("None", "ClientIP"),
        "sessionAffinityConfig": Free(),
        "externalTrafficPolicy": Enum("Cluster", "Local"),
        "internalTrafficPolicy": Enum("Cluster", "Local"),
        "ipFamilies": List(Enum("IPv4", "IPv6")),
        "ipFamilyPolicy": Enum("SingleStack", "PreferDualStack", "RequireDualStack"),
        "loadBalancerIP": Str(),
        "loadBalancerSourceRanges": List(Str()),
        "loadBalancerClass": Str(),
        "allocateLoadBalancerNodePorts": Bool(),
        "healthCheckNodePort": Int(0, 65535),
        "trafficDistribution": Str(),
    },
    rules=[_service_rule],
)

OBJECT_REFERENCE = Obj(
    {
        "kind": Str(),
        "name": Str(),
        "namespace": Str(),
        "uid": Str(),
        "apiVersion": Str(),
        "resourceVersion": Str(),
        "fieldPath": Str(),
    }
)

ENDPOINT_PORT = Obj(
    {"name": Str(), "port": PORT, "protocol": PROTOCOL, "appProtocol": Str()},
    required=["port"],
)

ENDPOINT_ADDRESS = Obj(
    {"ip": IP, "hostname": Str(), "nodeName": Str(), "targetRef": OBJECT_REFERENCE},
    required=["ip"],
)

ENDPOINTS = Obj(
    {
        "subsets": List(
            Obj(
                {
                    "addresses": List(ENDPOINT_ADDRESS),
                    "notReadyAddresses": List(ENDPOINT_ADDRESS),
                    "ports": List(ENDPOINT_PORT),
                }
            )
        ),
    }
)

ENDPOINT_SLICE = Obj(
    {
        "addressType": Enum("IPv4", "IPv6", "FQDN"),
        "endpoints": List(
            Obj(
                {
                    "addresses": List(Str(min_len=1), min_items=1),
                    "conditions": Obj({"ready": Bool(), "serving": Bool(), "terminating": Bool()}),
                    "hostname": Str(),
                    "nodeName": Str(),
                    "zone": Str(),
                    "targetRef": OBJECT_REFERENCE,
                    "hints": Free(),
                    "deprecatedTopology": Map(Str()),
                },
                required=["addresses"],
            )
        ),
        "ports": List(
            Obj({"name": Str(), "port": Int(0, 65535), "protocol": PROTOCOL, "appProtocol": Str()})
        ),
    },
    required=["addressType"],
)

CONTAINER_PORT = Obj(
    {
        "name": Str(),
        "containerPort": PORT,
        "protocol": PROTOCOL,
        "hostPort": Int(0, 65535),
        "hostIP": Str(),
    },
    required=["containerPort"],
)

_CONTAINER_FREE = (
    "args", "command", "env", "envFrom", "imagePullPolicy", "lifecycle", "livenessProbe",
    "readinessProbe", "resizePolicy", "resources", "restartPolicy", "restartPolicyRules",
    "securityContext", "startupProbe", "stdin", "stdinOnce", "terminationMessagePath",
    "terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts", "workingDir",
)

CONTAINER = Obj(
    {
        "name": Str(min_len=1),
        "image": Str(),
        "ports": List(CONTAINER_PORT),
        **{name: Free() for name in _CONTAINER_FREE},
    },
    required=["name"],
)

_POD_SPEC_FREE = (
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "dnsConfig", "dnsPolicy",
    "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC", "hostNetwork", "hostPID",
    "hostUsers", "hostname", "hostnameOverride", "imagePullSecrets", "nodeSelector", "os",
    "overhead", "preemptionPolicy", "priority", "priorityClassName", "readinessGates",
    "resourceClaims", "resources", "restartPolicy", "runtimeClassName", "schedulerName",
    "schedulingGates", "securityContext", "setHostnameAsFQDN", "shareProcessNamespace",
    "subdomain", "terminationGracePeriodSeconds", "tolerations", "topologySpreadConstraints",
    "volumes",
)

POD_SPEC = Obj(
    {
        "containers": List(CONTAINER, min_items=1),
        "initContainers": List(CONTAINER),
        "serviceAccountName": Str(),
        "serviceAccount": Str(),
        "nodeName": Str(),
        **{name: Free() for name in _POD_SPEC_FREE},
    },
    required=["containers"],
)

POD_STATUS = Obj(
    {
        "podIP": IP,
        "podIPs": List(Obj({"ip": IP})),
        "hostIP": Str(),
        "hostIPs": Free(),
        "phase": Enum("Pending", "Running", "Succeeded", "Failed", "Unknown"),
    },
    open=True,
)

LABEL_SELECTOR = Obj(
    {
        "matchLabels": LABELS,
        "matchExpressions": List(
            Obj(
                {
                    "key": Str(min_len=1),
                    "operator": Enum("In", "NotIn", "Exists", "DoesNotExist"),
                    "values": List(Str()),
                },
                required=["key", "operator"],
            )
        ),
    }
)

POD_TEMPLATE = Obj(
    {
        "metadata": Obj({"labels": LABELS, "annotations": Map(Str()), "name": Str(),
                         "namespace": Str(), "creationTimestamp": Free()}),
        "spec": POD_SPEC,
    },
    required=["spec"],
)


def _deployment_rule(value: dict[str, Any], path: FieldPath, report: Report) -> None:
    wanted = (value.get("selector") or {}).get("matchLabels") or {}
    labels = ((value.get("template") or {}).get("metadata") or {}).get("labels") or {}
    for key, item in wanted.items():
        if labels.get(key) != item:
            report((*path, "selector", "matchLabels", key),
                   "selector does not match the template labels")


DEPLOYMENT = Obj(
    {
        "replicas": Int(0, 10_000),
        "selector": LABEL_SELECTOR,
        "template": POD_TEMPLATE,
        "strategy": Free(),
        "minReadySeconds": Int(0),
        "revisionHistoryLimit": Int(0),
        "progressDeadlineSeconds": Int(0),
        "paused": Bool(),
    },
    required=["selector", "template"],
    rules=[_deployment_rule],
)

NAMESPACE = Obj({"finalizers": List(Str())})

SERVICE_ACCOUNT = Obj(
    {
        "secrets": List(Free()),
        "imagePullSecrets": List(Free()),
        "automountServiceAccountToken": Bool(),
    }
)
