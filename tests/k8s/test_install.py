"""`meshctl install` and `uninstall`: the manifests, as kubectl and the official client's typed
models accept them, applied to the emulated API server, whose CRDs then refuse what
`meshctl validate` refuses structurally."""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from emulator import BackgroundEmulator, write_kubeconfig
from kubernetes import client as models
from kubernetes.client.exceptions import ApiException

from meshctl.cli import main
from meshctl.kube.resources import CREDENTIALS, GATEWAY_API, ISTIO, REGISTRY


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def meshctl(*args: str, check: bool = True) -> Run:
    """`meshctl ARGS` in-process, its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    if check:
        assert code == 0, err.getvalue()
    return Run(code, out.getvalue(), err.getvalue())


def installed(*args: str) -> list[dict[str, Any]]:
    return copy.deepcopy(_installed(args))


@functools.cache
def _installed(args: tuple[str, ...]) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(meshctl("install", *args).stdout) if doc]


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[tuple[BackgroundEmulator, str]]:
    """An API server with no Istio CRDs installed, and a kubeconfig for it."""
    with BackgroundEmulator(istio_resources=False) as background:
        yield background, write_kubeconfig(background.url, tmp_path / "kubeconfig")
        assert not background.failures, background.failures


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def test_everything_a_cluster_needs_in_the_order_it_must_be_created() -> None:
    objects = installed("--replicas", "3")
    kinds = [obj["kind"] for obj in objects]
    assert kinds == ["CustomResourceDefinition"] * len(ISTIO) + [
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
        "Deployment", "PodDisruptionBudget", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
        "ValidatingWebhookConfiguration"]
    assert {crd["spec"]["names"]["kind"] for crd in by_kind(objects, "CustomResourceDefinition")} == {r.kind for r in ISTIO}
    (deployment,) = by_kind(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 15014}
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}
    assert "--kubernetes" in container["args"] and "--leader-lease" in container["args"]
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0][
        "podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert container["args"][container["args"].index("--ca-dir") + 1] == "/etc/cacerts"
    assert pod["volumes"] == [{"name": "cacerts", "secret": {"secretName": "cacerts", "defaultMode": 0o440}}]
    assert "PRIVATE KEY" not in meshctl("install").stdout  # the CA's key is the operator's Secret, never printed
    (service,) = by_kind(objects, "Service")
    assert sorted((p["port"], p["targetPort"]) for p in service["spec"]["ports"]) == [
        (443, 15017), (15010, 15010), (15011, 15011), (15012, 15012), (15014, 15014)]
    (budget,) = by_kind(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1 and budget["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_webhooks_are_served_by_the_replicas_and_trust_the_ca_bundle_given(tmp_path: Path) -> None:
    """The API server verifies serve's webhook certificate (issued by the cacerts CA) against
    caBundle: the mesh's root, as given; validation then fails closed, as Istio sets it once
    its CA bundle is known. Without a bundle, a note says what will not work."""
    from meshctl.security.cadir import open_ca_directory

    open_ca_directory(str(tmp_path / "ca"), "cluster.local")
    root = (tmp_path / "ca" / "root-cert.pem").read_bytes()
    objects = [doc for doc in yaml.safe_load_all(meshctl("install", "--ca-bundle", str(tmp_path / "ca" / "root-cert.pem"),
                                                         "--image", "registry.example.com/meshctl:7").stdout) if doc]
    (mutating,) = by_kind(objects, "MutatingWebhookConfiguration")
    validating = by_kind(objects, "ValidatingWebhookConfiguration")
    hooks = [hook for obj in (mutating, *validating) for hook in obj["webhooks"]]
    assert {base64.b64decode(hook["clientConfig"]["caBundle"]) for hook in hooks} == {root}
    assert {(hook["clientConfig"]["service"]["name"], hook["clientConfig"]["service"]["port"]) for hook in hooks} == {
        ("istiod", 443)}
    assert {hook["failurePolicy"] for hook in hooks} == {"Fail"}
    (container,) = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--webhook-address") + 1] == "0.0.0.0:15017"
    assert args[args.index("--sidecar-image") + 1] == "registry.example.com/meshctl:7"
    assert {"name": "REVISION", "value": "default"} in container["env"]

    bare_run = meshctl("install")
    assert "carry no caBundle (--ca-bundle)" in bare_run.stderr
    assert not any("caBundle" in hook["clientConfig"] for obj in installed() if obj["kind"].endswith(
        "WebhookConfiguration") for hook in obj["webhooks"])


def test_a_ca_bundle_that_is_not_certificates_alone_is_refused(tmp_path: Path) -> None:
    from meshctl.security.cadir import open_ca_directory

    open_ca_directory(str(tmp_path / "ca"), "cluster.local")
    key = tmp_path / "ca" / "ca-key.pem"
    for path, reason in [(key, "holds a private key; give the mesh's root certificate only (root-cert.pem)"),
                         (tmp_path / "missing.pem", "No such file or directory")]:
        done = meshctl("install", "--ca-bundle", str(path), check=False)
        assert (done.returncode, done.stdout) == (65, "")
        assert done.stderr.strip() == f"error: {path}: {reason}"
    (tmp_path / "text.pem").write_text("not a certificate\n")
    done = meshctl("install", "--ca-bundle", str(tmp_path / "text.pem"), check=False)
    assert done.returncode == 65 and f"{tmp_path / 'text.pem'}: not PEM certificates" in done.stderr
    assert "BEGIN" not in meshctl("install", "--ca-bundle", str(key), check=False).stderr  # the key is not shown


def test_rbac_grants_reading_exactly_what_serve_watches_and_nothing_else() -> None:
    objects = installed()
    (cluster_role,) = by_kind(objects, "ClusterRole")
    granted = {(group, resource, verb) for rule in cluster_role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    watched = {(r.group, r.plural, verb) for r in (*REGISTRY, *CREDENTIALS, *ISTIO, *GATEWAY_API)
               for verb in ("get", "list", "watch")}
    configurations = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
    webhooks = {("admissionregistration.k8s.io", plural, verb) for plural in configurations
                for verb in ("get", "list", "watch", "update")}
    assert granted == watched | webhooks | {("authentication.k8s.io", "tokenreviews", "create")}
    (updates,) = [rule for rule in cluster_role["rules"] if "update" in rule["verbs"]]
    assert updates["verbs"] == ["update"] and updates["resourceNames"] == [  # its own configurations only
        "istio-sidecar-injector", "istio-validator-istio-system", "istiod-default-validator"]
    (role,) = by_kind(objects, "Role")
    assert role["metadata"]["namespace"] == "istio-system"
    assert {(tuple(rule["resources"]), tuple(rule.get("resourceNames", ())), tuple(rule["verbs"]))
            for rule in role["rules"]} == {
        (("leases",), (), ("create",)), (("leases",), ("istiod-leader",), ("get", "update")),
        (("configmaps",), (), ("get", "list", "watch")),  # the mesh config, in istiod's namespace only
        (("gateways",), (), ("create",))}  # the dry run that shows validation is reached


def test_a_revision_names_everything_apart_but_shares_the_crds() -> None:
    objects = installed("--revision", "canary", "-i", "mesh")
    control_plane = [obj for obj in objects if obj["kind"] not in ("CustomResourceDefinition", "Namespace")]
    webhooks = [obj for obj in control_plane if obj["kind"].endswith("WebhookConfiguration")]
    assert [obj["metadata"]["name"] for obj in webhooks] == ["istio-sidecar-injector-canary-mesh",
                                                            "istio-validator-canary-mesh"]  # Istio's names
    assert all(obj["metadata"]["name"].startswith("istiod-canary") for obj in control_plane if obj not in webhooks)
    assert {hook["clientConfig"]["service"]["name"] for obj in webhooks for hook in obj["webhooks"]} == {"istiod-canary"}
    (container,) = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    assert {"name": "REVISION", "value": "canary"} in container["env"]
    assert all(obj["metadata"]["labels"]["istio.io/rev"] == "canary" for obj in control_plane)
    assert all(obj["metadata"].get("namespace", "mesh") == "mesh" for obj in control_plane)
    assert [crd["metadata"]["name"] for crd in by_kind(objects, "CustomResourceDefinition")] == [
        crd["metadata"]["name"] for crd in by_kind(installed(), "CustomResourceDefinition")]
    done = meshctl("install", "--revision", "Not_A_Label", check=False)
    assert done.returncode == 64 and "DNS-1123" in done.stderr


def test_json_output_is_one_list_of_the_same_objects() -> None:
    listing = json.loads(meshctl("install", "-o", "json").stdout)
    assert listing["kind"] == "List" and listing["items"] == installed()


def test_every_built_in_object_is_a_valid_typed_model_of_the_official_client() -> None:
    """kubectl validates against the OpenAPI documents a real API server serves; the client's
    models come from the same documents and forbid unknown fields."""
    for obj in installed():
        version = obj["apiVersion"].rpartition("/")[2]
        getattr(models, f"{version.capitalize()}{obj['kind']}").model_validate(obj)
    with pytest.raises(ValueError, match="replicaz"):
        broken = by_kind(installed(), "Deployment")[0]
        broken["spec"]["replicaz"] = 2
        models.V1Deployment.model_validate(broken)


def test_kubectl_accepts_the_manifests(bare: tuple[BackgroundEmulator, str]) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: .ci/run installs Debian's kubernetes-client"
    manifest = meshctl("install").stdout
    # --validate=false: the schemas kubectl validates with are the OpenAPI documents a real API
    # server serves; the emulator has none (the typed-model test above checks the same fields).
    done = subprocess.run([kubectl, "--kubeconfig", bare[1], "apply", "--dry-run=client", "--validate=false",
                           "-f", "-"], input=manifest, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(installed()) and all(line.endswith("created (dry run)") for line in lines)


def test_apply_then_the_api_refuses_what_validate_refuses_and_uninstall_removes_it(
    bare: tuple[BackgroundEmulator, str], tmp_path: Path
) -> None:
    background, kubeconfig = bare
    applied = meshctl("install", "--apply", "--kubeconfig", kubeconfig).stdout.splitlines()
    assert applied[0] == "customresourcedefinition.apiextensions.k8s.io/virtualservices.networking.istio.io created"
    assert "poddisruptionbudget.policy/istiod created" in applied
    assert applied[-1] == ("validatingwebhookconfiguration.admissionregistration.k8s.io/istiod-default-validator "
                           "created")
    again = meshctl("install", "--apply", "--kubeconfig", kubeconfig).stdout.splitlines()
    assert all(line.endswith(" configured") for line in again)

    configuration = models.Configuration()
    configuration.host = background.url
    custom = models.CustomObjectsApi(models.ApiClient(configuration))

    def outcomes(spec: dict[str, Any], name: str) -> tuple[int, int]:
        """(meshctl validate's exit code, the API's answer: 201 or the refusal's code)."""
        obj = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
               "metadata": {"name": name, "namespace": "default"}, "spec": spec}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(obj))
        code = meshctl("validate", "-f", str(path), check=False).returncode
        try:
            custom.create_namespaced_custom_object("networking.istio.io", "v1", "default", "virtualservices", obj,
                                                   field_validation="Strict")
            return code, 201
        except ApiException as exc:
            return code, exc.status

    route = {"destination": {"host": "reviews"}}
    assert outcomes({"hosts": ["reviews"], "http": [{"route": [route]}]}, "valid") == (0, 201)
    for name, spec in [
        ("wrong-type", {"hosts": ["reviews"], "http": [{"route": [route], "timeout": 5}]}),
        ("unknown-field", {"hosts": ["reviews"], "http": [{"route": [{"destination": {"hots": "reviews"}}]}]}),
        ("missing-required", {"hosts": ["reviews"], "http": [{"route": [{"destination": {"port": {"number": 80}}}]}]}),
        ("bad-enum", {"hosts": ["reviews"], "http": [{"route": [route], "corsPolicy": {"unmatchedPreflights": "X"}}]}),
        ("out-of-range", {"hosts": ["reviews"], "http": [{"route": [{**route, "weight": -1}]}]}),
    ]:
        assert outcomes(spec, name) == (65, 422), name

    removed = meshctl("uninstall", "--kubeconfig", kubeconfig).stdout.splitlines()
    assert "deployment.apps/istiod deleted" in removed and "lease.coordination.k8s.io/istiod-leader not found" in removed
    assert not any("customresourcedefinition" in line or line.startswith("namespace/") for line in removed)
    assert custom.list_cluster_custom_object("networking.istio.io", "v1", "virtualservices")["items"]
    purged = meshctl("uninstall", "--purge", "--kubeconfig", kubeconfig).stdout.splitlines()
    assert "customresourcedefinition.apiextensions.k8s.io/virtualservices.networking.istio.io deleted" in purged
    with pytest.raises(ApiException) as gone:
        custom.list_cluster_custom_object("networking.istio.io", "v1", "virtualservices")
    assert gone.value.status == 404
