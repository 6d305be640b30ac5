"""`meshctl serve --kubernetes --webhook-address`: its webhooks follow the cluster.

The injector uses the mesh config serve watches (the `istio` ConfigMap in istio-system): an
edit there changes the next pod injected, a bad one is refused and the last good one kept, and
a deleted one means istiod's defaults again. Everything goes through the official client over
real HTTP to the emulated API server; the webhooks are called over HTTPS as the API server
calls them (TLS verified against serve's CA root, for istiod's Service name).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from kube_mesh import KubeServe

from meshctl.kube.apply import apply_objects, delete_objects
from meshctl.kube.client import KubeClient, load_client
from meshctl.loopback import free_port, wait_until

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
