"""`meshctl serve --kubernetes --webhook-address`: its webhooks follow the cluster.

The injector uses the mesh config serve watches (the `istio` ConfigMap in istio-system): an
edit there changes the next pod injected, a bad one is refused and the last good one kept, and
a deleted one means istiod's defaults again. Everything goes through the official client over
real HTTP to the emulated API server; the webhooks are called over HTTPS as the API server
calls them (TLS verified against serve's CA root, for istiod's Service name).
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import kmock
import pytest
from emulator import MeshEmulator
from kube_mesh import KubeServe

from meshctl.kube.apply import apply_objects, delete_objects
from meshctl.kube.client import KubeClient, load_client
from meshctl.loopback import free_port, wait_until
from meshctl.webhooks.configurations import mutating_webhook_configuration, webhook_configurations

sys.path.append(str(Path(__file__).resolve().parents[1] / "webhooks"))  # the API server's side of the webhooks
from webhook_support import Client, admission_review, patch_of  # noqa: E402 - after the path it lives on

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "web", "image": "web:1"}]}}


def mesh_configmap(text: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": text}}


class Webhooks:
    """serve's webhooks as the API server reaches them."""

    def __init__(self, serve: KubeServe, port: int) -> None:
        self.serve = serve
        self.port = port
        assert serve.ca_dir is not None
        self.ca_bundle = (serve.ca_dir / "root-cert.pem").read_bytes()

    def review(self, obj: dict[str, Any], path: str = "/inject", namespace: str = "shop") -> dict[str, Any]:
        client = Client(self.port, self.ca_bundle)
        try:
            return client.review(path, admission_review(obj, namespace=namespace))["response"]  # type: ignore[no-any-return]
        finally:
            client.close()

    def injected(self) -> dict[str, Any]:
        """The pod as the next admission of POD makes it."""
        response = self.review(POD)
        assert response["allowed"], response
        pod: dict[str, Any] = jsonpatch.apply_patch(POD, patch_of({"response": response}))
        return pod

    def injected_once(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The pod as admitted, once `check` holds for it (the change reached the injector)."""
        def admitted() -> dict[str, Any] | None:
            pod = self.injected()
            return pod if check(pod) else None

        found: dict[str, Any] = wait_until(admitted, 10, what=what)
        return found


def proxy_env(pod: dict[str, Any]) -> dict[str, str]:
    proxy = next(c for c in pod["spec"]["containers"] if c["name"] == "istio-proxy")
    return {item["name"]: item.get("value", "") for item in proxy["env"]}


@pytest.fixture
def client(kubeconfig: str) -> KubeClient:
    return load_client(kubeconfig, None)


@pytest.fixture
def webhooks(tmp_path: Path, kubeconfig: str, client: KubeClient, processes: Any) -> Iterator[Webhooks]:
    apply_objects(client, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
                           mesh_configmap("defaultConfig:\n  proxyMetadata:\n    MESH_EDIT: one\n")])
    port = free_port()
    serve = KubeServe(kubeconfig, processes, tmp_path / "serve.log", ("--webhook-address", f"127.0.0.1:{port}"),
                      ca_dir=tmp_path / "ca")
    yield Webhooks(serve.start(), port)


def test_the_injector_follows_the_clusters_mesh_config(webhooks: Webhooks, client: KubeClient) -> None:
    pod = webhooks.injected()
    assert proxy_env(pod)["MESH_EDIT"] == "one"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["web", "istio-proxy"]
    # an edit reaches the next pod: its proxyMetadata, and the sidecar first when the
    # application waits for the proxy
    apply_objects(client, [mesh_configmap("trustDomain: edge.example\ndefaultConfig:\n  proxyMetadata:\n"
                                          "    MESH_EDIT: two\n  holdApplicationUntilProxyStarts: true\n")])
    pod = webhooks.injected_once(lambda pod: proxy_env(pod)["MESH_EDIT"] == "two",
                                 "the edited mesh config in the next injection")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["istio-proxy", "web"]
    assert proxy_env(pod)["TRUST_DOMAIN"] == "edge.example"
    # a defaultConfig no proxy could run with is refused; pods keep being injected with the last good one
    apply_objects(client, [mesh_configmap("defaultConfig:\n  interceptionMode: SIDEWAYS\n")])
    wait_until(lambda: "mesh config refused for injection" in webhooks.serve.log.read_text(), 10,
               what="the bad mesh config refused")
    assert 'invalid value for enum field interceptionMode: \\"SIDEWAYS\\"' in webhooks.serve.log.read_text()
    assert proxy_env(webhooks.injected())["MESH_EDIT"] == "two"
    # deleted: istiod's defaults again
    delete_objects(client, [mesh_configmap("")])
    pod = webhooks.injected_once(lambda pod: "MESH_EDIT" not in proxy_env(pod),
                                 "istiod's defaults once the ConfigMap is gone")
    assert proxy_env(pod)["TRUST_DOMAIN"] == "cluster.local"


MUTATING = ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
VALIDATING = ("admissionregistration.k8s.io", "validatingwebhookconfigurations")
INJECTOR, VALIDATOR, DEFAULT_VALIDATOR = "istio-sidecar-injector", "istio-validator-istio-system", "istiod-default-validator"


def stored(emulator: MeshEmulator, resource: tuple[str, str], name: str) -> dict[str, Any]:
    found = emulator.store.get(resource, ("", name))
    assert found is not None, name
    return found


def bundles(config: dict[str, Any]) -> dict[str, bytes]:
    return {hook["name"]: base64.b64decode(hook["clientConfig"].get("caBundle") or "") for hook in config["webhooks"]}


def policies(config: dict[str, Any]) -> set[str]:
    return {hook.get("failurePolicy", "Fail") for hook in config["webhooks"]}


def api_server_validation(emulator: MeshEmulator, port: int) -> list[str]:
    """Dry-run creates of Istio Gateways in istio-system go through the validator as the API
    server sends them: to serve's webhook (for the `istiod` Service, at `port`), TLS verified
    against the caBundle the configuration holds right then, its failurePolicy applied when the
    call fails. The outcomes, in order."""
    outcomes: list[str] = []

    def admit(request: Any) -> Any:
        if request.params.get("dryRun") != "All":
            raise NotImplementedError  # not the probe: the emulator's own answer
        hook = stored(emulator, VALIDATING, VALIDATOR)["webhooks"][0]
        try:
            client = Client(port, base64.b64decode(hook["clientConfig"].get("caBundle") or ""))
            try:
                response = client.review("/validate", admission_review(request.data, namespace="istio-system"))
            finally:
                client.close()
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            outcomes.append(f"call failed, {hook.get('failurePolicy')}")
            if hook.get("failurePolicy") == "Ignore":
                return request.data
            raise kmock.KubernetesError(status=500, reason="InternalError", message=(
                f'Internal error occurred: failed calling webhook "{hook["name"]}": {exc}')) from None
        if response["response"]["allowed"]:
            outcomes.append("allowed")
            return request.data
        outcomes.append("denied")
        raise kmock.KubernetesError(status=400, reason="BadRequest", message=(
            f'admission webhook "{hook["name"]}" denied the request: {response["response"]["status"]["message"]}'))

    emulator["post /apis/networking.istio.io/v1alpha3/namespaces/istio-system/gateways"] << admit
    return outcomes


@pytest.fixture
def installed(client: KubeClient) -> list[dict[str, Any]]:
    """Istio's webhook configurations as `meshctl install` writes them without a CA bundle,
    and another revision's injector, which is not this control plane's to touch."""
    configurations = webhook_configurations("istio-system", "", b"")
    canary = mutating_webhook_configuration("istio-system", "canary", b"other-ca")
    apply_objects(client, [*configurations, canary])
    return configurations


def serve_webhooks(tmp_path: Path, kubeconfig: str, processes: Any, *flags: str) -> tuple[KubeServe, int]:
    port = free_port()
    serve = KubeServe(kubeconfig, processes, tmp_path / "serve.log",
                      ("--webhook-address", f"127.0.0.1:{port}", "--mesh-config", str(_mesh_file(tmp_path)), *flags),
                      ca_dir=tmp_path / "ca")
    return serve, port


def _mesh_file(tmp_path: Path) -> Path:
    path = tmp_path / "mesh.yaml"
    path.write_text("meshId: mesh-1\n")
    return path


def test_serve_keeps_its_ca_bundle_in_the_webhook_configurations(
    tmp_path: Path, kubeconfig: str, client: KubeClient, emulator: MeshEmulator, installed: Any, processes: Any
) -> None:
    injector = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-sidecar-injector",
                                                                   "namespace": "istio-system"},
                "data": {"values": '{"global": {"proxy": {"includeIPRanges": "10.0.0.0/8"}}}'}}
    apply_objects(client, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}, injector])
    serve, port = serve_webhooks(tmp_path, kubeconfig, processes)
    outcomes = api_server_validation(emulator, port)
    serve.start()
    # istiod's injector ConfigMap is not read, and serve says so rather than seem to apply it
    wait_until(lambda: "ConfigMap istio-system/istio-sidecar-injector (istiod's injection templates and values) is "
               "not read" in serve.log.read_text(), 10, what="the warning about istiod's injector ConfigMap")
    assert serve.ca_dir is not None
    root = (serve.ca_dir / "root-cert.pem").read_bytes()
    # every injection webhook and every validation webhook of this revision trusts serve's root
    wait_until(lambda: set(bundles(stored(emulator, MUTATING, INJECTOR)).values()) == {root}, 10,
               what="the injector's caBundle")
    for name in (VALIDATOR, DEFAULT_VALIDATOR):
        wait_until(lambda: set(bundles(stored(emulator, VALIDATING, name)).values()) == {root}, 10,
                   what=f"{name}'s caBundle")
    # the validators fail closed once the API server was seen reaching serve (through that very
    # caBundle: the first dry run, before it, could not call the webhook and was let through)
    for name in (VALIDATOR, DEFAULT_VALIDATOR):
        wait_until(lambda: policies(stored(emulator, VALIDATING, name)) == {"Fail"}, 10, what=f"{name} failing closed")
    assert outcomes[0] == "call failed, Ignore" and outcomes[-1] == "denied", outcomes
    assert "validators fail closed from now on" in serve.log.read_text()
    # another revision's configuration is left as it was
    canary = stored(emulator, MUTATING, "istio-sidecar-injector-canary")
    assert set(bundles(canary).values()) == {b"other-ca"}
    # written only where it differed: settled, nothing is written again
    versions = [stored(emulator, *key)["metadata"]["resourceVersion"]
                for key in ((MUTATING, INJECTOR), (VALIDATING, VALIDATOR), (VALIDATING, DEFAULT_VALIDATOR))]
    time.sleep(1.0)
    assert versions == [stored(emulator, *key)["metadata"]["resourceVersion"]
                        for key in ((MUTATING, INJECTOR), (VALIDATING, VALIDATOR), (VALIDATING, DEFAULT_VALIDATOR))]
    # someone resets them (kubectl apply of the chart, a GitOps sync): put back at once
    apply_objects(client, webhook_configurations("istio-system", "", b""))
    wait_until(lambda: set(bundles(stored(emulator, MUTATING, INJECTOR)).values()) == {root}, 10,
               what="the injector's caBundle put back")
    wait_until(lambda: policies(stored(emulator, VALIDATING, VALIDATOR)) == {"Fail"}
               and set(bundles(stored(emulator, VALIDATING, VALIDATOR)).values()) == {root}, 10,
               what="the validator put back")
    # and the API server now reaches the injector with it too
    injected = Client(port, base64.b64decode(stored(emulator, MUTATING, INJECTOR)["webhooks"][0]["clientConfig"]["caBundle"]))
    try:
        assert injected.review("/inject", admission_review(POD, namespace="shop"))["response"]["allowed"]
    finally:
        injected.close()


def test_only_the_leader_writes_them(
    tmp_path: Path, kubeconfig: str, client: KubeClient, emulator: MeshEmulator, installed: Any, processes: Any
) -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "istiod-leader", "namespace": "istio-system"},
             "spec": {"holderIdentity": "another-replica", "leaseDurationSeconds": 15}}
    apply_objects(client, [lease])
    serve, port = serve_webhooks(tmp_path, kubeconfig, processes, "--leader-lease", "istio-system/istiod-leader")
    api_server_validation(emulator, port)
    serve.start()
    time.sleep(2.5)  # more than a renewal period: serve has seen the Lease held, and writes nothing
    assert not serve.leading()
    assert set(bundles(stored(emulator, MUTATING, INJECTOR)).values()) == {b""}
    assert policies(stored(emulator, VALIDATING, VALIDATOR)) == {"Ignore"}
    # the other replica releases the Lease: serve leads, and keeps them from then on
    apply_objects(client, [{**lease, "spec": {"holderIdentity": "", "leaseDurationSeconds": 15}}])
    wait_until(serve.leading, 10, what="serve leading")
    assert serve.ca_dir is not None
    root = (serve.ca_dir / "root-cert.pem").read_bytes()
    wait_until(lambda: set(bundles(stored(emulator, MUTATING, INJECTOR)).values()) == {root}, 10,
               what="the injector's caBundle, written by the leader")
    wait_until(lambda: policies(stored(emulator, VALIDATING, VALIDATOR)) == {"Fail"}, 10, what="failing closed")
    assert "is not read" not in serve.log.read_text()  # no injector ConfigMap in this cluster: nothing to warn of
