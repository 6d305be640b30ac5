"""The objects that run `meshctl serve` in a cluster, as Istio's base and istiod charts lay
them out (kubernetes-and-capture.md §5), cut to what serve does today.

- Istio's CRDs, shared by every revision (install/crds.py);
- the namespace, a ServiceAccount, and least-privilege RBAC: cluster-wide read (get, list,
  watch) of exactly the kinds serve watches (Secrets among them, as istiod reads them: the
  gateways' credentials), create on TokenReviews (the CA authenticates workload tokens with
  them), and, in the namespace only, the one Lease leader election uses and read access to
  ConfigMaps (the mesh config is the `istio` one);
- a Deployment of N replicas spread across nodes (preferred pod anti-affinity), with resource
  requests, readiness on `/ready`, a grace period longer than serve's own shutdown, and a
  restricted security context;
- the `istiod` Service sidecars know (15010 plaintext xDS, 15011 xDS over mutual TLS, where
  gateways prove who they are to be sent their Secrets, 15012 xDS and CA over TLS, 443 for
  webhooks, 15014 monitoring) and a PodDisruptionBudget keeping one replica up;
- last, once something can answer them, Istio's webhook configurations (webhooks/configurations.py):
  sidecar injection and validation, served by the replicas on 15017 with a certificate from the
  CA. Their `caBundle` is the mesh's root certificate when the operator gives it; without it
  (Istio's chart leaves it empty too) the leading replica patches it in, as istiod does, and
  switches the validators from `Ignore` to `Fail` once the API server is seen reaching them.

Every replica signs workload certificates with the same CA: Istio's `cacerts` Secret (in
serve's CA directory layout), which the operator creates once and no manifest ever contains,
since a printed manifest must not carry a private key.

With a revision, every name gets `-REVISION` and every object the `istio.io/rev` label, so
two control planes can run side by side during an upgrade; CRDs are not revisioned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.install.crds import crds
from meshctl.kube.resources import CREDENTIALS, GATEWAY_API, ISTIO, REGISTRY
from meshctl.kube.webhookpatch import WEBHOOK_CONFIGURATIONS
from meshctl.model.injection import REVISION_LABEL
from meshctl.webhooks.configurations import webhook_configurations

__all__ = ["DEFAULT_IMAGE", "Install", "manifests"]

DEFAULT_IMAGE = "ghcr.io/meshctl/meshctl:0.1.0"
XDS_PORT = 15010
MUTUAL_TLS_PORT = 15011
SECURE_PORT = 15012
MONITORING_PORT = 15014
WEBHOOK_PORT = 15017
SHUTDOWN_GRACE_SECONDS = 10
CA_SECRET = "cacerts"
CA_MOUNT = "/etc/cacerts"


@dataclass(frozen=True, slots=True)
class Install:
    """What `meshctl install` is asked for."""

    namespace: str = "istio-system"
    replicas: int = 2
    revision: str = ""
    image: str = DEFAULT_IMAGE
    ca_bundle: bytes = b""
    """The mesh's root certificate (PEM; the `cacerts` Secret's root-cert.pem), for the webhooks."""

    @property
    def name(self) -> str:
        """`istiod`, or `istiod-REVISION`: the name sidecars resolve (`istiod.istio-system.svc`)."""
        return f"istiod-{self.revision}" if self.revision else "istiod"

    @property
    def lease(self) -> str:
        return f"{self.name}-leader"

    @property
    def labels(self) -> dict[str, str]:
        return {"app": "istiod", "istio": "pilot", REVISION_LABEL: self.revision or "default",
                "app.kubernetes.io/name": "meshctl", "app.kubernetes.io/part-of": "meshctl"}

    @property
    def selector(self) -> dict[str, str]:
        return {"app": "istiod", REVISION_LABEL: self.revision or "default"}

    def metadata(self, name: str, *, namespaced: bool = True) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "labels": dict(self.labels)}
        if namespaced:
            metadata["namespace"] = self.namespace
        return metadata


def manifests(install: Install, *, with_crds: bool = True) -> list[dict[str, Any]]:
    """Every object, in the order they must be created (CRDs and the namespace first)."""
    control_plane = [
        _namespace(install),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": install.metadata(install.name)},
        *_rbac(install),
        _service(install),
        _deployment(install),
        _disruption_budget(install),
        *webhook_configurations(install.namespace, install.revision, install.ca_bundle),
    ]
    return [*(crds() if with_crds else ()), *control_plane]


def _namespace(install: Install) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": install.namespace, "labels": {"app.kubernetes.io/part-of": "meshctl"}}}


def _rules(install: Install) -> list[dict[str, Any]]:
    """Read what serve watches, nothing more; create TokenReviews; update its own webhook
    configurations, by name (their caBundle and the validators' failurePolicy, which serve
    keeps as istiod does: meshctl.kube.webhookpatch)."""
    by_group: dict[str, list[str]] = {}
    for resource in (*REGISTRY, *CREDENTIALS, *ISTIO, *GATEWAY_API, *WEBHOOK_CONFIGURATIONS):
        by_group.setdefault(resource.group, []).append(resource.plural)
    rules = [{"apiGroups": [group], "resources": sorted(plurals), "verbs": ["get", "list", "watch"]}
             for group, plurals in sorted(by_group.items())]
    rules.append({"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]})
    configurations = webhook_configurations(install.namespace, install.revision, install.ca_bundle)
    rules.append({"apiGroups": [WEBHOOK_CONFIGURATIONS[0].group], "resources": [resource.plural for resource in
                                                                                WEBHOOK_CONFIGURATIONS],
                  "resourceNames": [obj["metadata"]["name"] for obj in configurations], "verbs": ["update"]})
    return rules


def _rbac(install: Install) -> list[dict[str, Any]]:
    cluster_role = f"{install.name}-clusterrole-{install.namespace}"
    subject = [{"kind": "ServiceAccount", "name": install.name, "namespace": install.namespace}]
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": install.metadata(cluster_role, namespaced=False), "rules": _rules(install)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": install.metadata(cluster_role, namespaced=False),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
         "subjects": subject},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": install.metadata(install.name),
         "rules": [
             # create cannot be limited by name: a Lease that does not exist yet has none
             {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
             {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [install.lease],
              "verbs": ["get", "update"]},
             # the mesh config (the `istio` ConfigMap), read where istiod reads it
             {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
             # the dry-run Gateway showing the API server reaches validation (then it fails closed)
             {"apiGroups": ["networking.istio.io"], "resources": ["gateways"], "verbs": ["create"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": install.metadata(install.name),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": install.name},
         "subjects": subject},
    ]


def _service(install: Install) -> dict[str, Any]:
    ports = [
        {"name": "grpc-xds", "port": XDS_PORT, "targetPort": XDS_PORT, "protocol": "TCP"},
        {"name": "https-xds", "port": MUTUAL_TLS_PORT, "targetPort": MUTUAL_TLS_PORT, "protocol": "TCP"},
        {"name": "https-dns", "port": SECURE_PORT, "targetPort": SECURE_PORT, "protocol": "TCP"},
        {"name": "https-webhook", "port": 443, "targetPort": WEBHOOK_PORT, "protocol": "TCP"},
        {"name": "http-monitoring", "port": MONITORING_PORT, "targetPort": MONITORING_PORT, "protocol": "TCP"},
    ]
    return {"apiVersion": "v1", "kind": "Service", "metadata": install.metadata(install.name),
            "spec": {"selector": install.selector, "ports": ports}}


def _deployment(install: Install) -> dict[str, Any]:
    args = [
        "serve", "--kubernetes",
        "--xds-address", f"0.0.0.0:{XDS_PORT}",
        "--debug-address", f"0.0.0.0:{MONITORING_PORT}",
        "--leader-lease", f"{install.namespace}/{install.lease}",
        "--istioNamespace", install.namespace,
        "--ca-address", f"0.0.0.0:{SECURE_PORT}", "--ca-dir", CA_MOUNT,
        "--webhook-address", f"0.0.0.0:{WEBHOOK_PORT}", "--sidecar-image", install.image,
        "--xds-mtls-address", f"0.0.0.0:{MUTUAL_TLS_PORT}",
        "--shutdown-grace", f"{SHUTDOWN_GRACE_SECONDS}s",
        "--log-format", "json",
    ]
    container = {
        "name": "discovery",
        "image": install.image,
        "args": args,
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            # what the webhooks inject (sidecars of istiod-REVISION) and their certificate's names
            {"name": "REVISION", "value": install.revision or "default"},
        ],
        "ports": [
            {"name": "grpc-xds", "containerPort": XDS_PORT, "protocol": "TCP"},
            {"name": "https-xds", "containerPort": MUTUAL_TLS_PORT, "protocol": "TCP"},
            {"name": "https-dns", "containerPort": SECURE_PORT, "protocol": "TCP"},
            {"name": "https-webhook", "containerPort": WEBHOOK_PORT, "protocol": "TCP"},
            {"name": "http-monitoring", "containerPort": MONITORING_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": MONITORING_PORT},
                           "initialDelaySeconds": 1, "periodSeconds": 3, "timeoutSeconds": 5},
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "volumeMounts": [{"name": "cacerts", "mountPath": CA_MOUNT, "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 1337, "runAsGroup": 1337,
                            "capabilities": {"drop": ["ALL"]}},
    }
    spread = {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": install.selector},
                                                 "topologyKey": "kubernetes.io/hostname"}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": install.metadata(install.name),
        "spec": {
            "replicas": install.replicas,
            "selector": {"matchLabels": install.selector},
            "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": install.labels, "annotations": {"sidecar.istio.io/inject": "false"}},
                "spec": {
                    "serviceAccountName": install.name,
                    "terminationGracePeriodSeconds": SHUTDOWN_GRACE_SECONDS + 20,
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [spread]}},
                    "securityContext": {"fsGroup": 1337},
                    "containers": [container],
                    "volumes": [{"name": "cacerts", "secret": {"secretName": CA_SECRET, "defaultMode": 0o440}}],
                },
            },
        },
    }


def _disruption_budget(install: Install) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": install.metadata(install.name),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": install.selector}}}
