"""The injector before and after serve has read the cluster's mesh config: it refuses pods
(saying why) rather than inject them with defaults the cluster may not use, and injects with the
mesh config it is given from then on; validation never waits for it."""

from __future__ import annotations

import json

import jsonpatch
from webhook_support import DEPLOYMENT_POD, SERVICE, admission_review, patch_of

from meshctl.inject.settings import InjectSettings
from meshctl.model.meshconfig import mesh_config_text
from meshctl.security.ca import CertificateAuthority, self_signed_bundle
from meshctl.webhooks.certificates import serving_credentials
from meshctl.webhooks.server import WebhookServer


def test_pods_wait_for_the_mesh_config_and_are_then_injected_with_it() -> None:
    ca = CertificateAuthority(self_signed_bundle("cluster.local"))
    server = WebhookServer(InjectSettings(), serving_credentials(ca, SERVICE),
                           awaiting_mesh="ConfigMap istio-system/istio")

    def answer(path: str, obj: dict[str, object]) -> dict[str, object]:
        status, kind, body = server.answer("POST", path, "application/json",
                                           json.dumps(admission_review(obj)).encode())
        assert (status, kind) == (200, "application/json")
        return json.loads(body)  # type: ignore[no-any-return]

    assert answer("/inject", DEPLOYMENT_POD)["response"] == {
        "uid": "7b2e-01", "allowed": False, "status": {"message": "meshctl serve has not read the mesh config from "
                                                                  "ConfigMap istio-system/istio yet; try again shortly"}}
    gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "g"}, "spec": {}}
    assert "spec.servers: required field is missing" in answer("/validate", gateway)["response"]["status"]["message"]  # type: ignore[index]
    server.use_mesh(mesh_config_text("meshId: mesh-9\n", "mesh"))
    pod = jsonpatch.apply_patch(DEPLOYMENT_POD, patch_of(answer("/inject/cluster/east", DEPLOYMENT_POD)))
    env = {item["name"]: item.get("value") for item in pod["spec"]["containers"][-1]["env"]}
    assert env["ISTIO_META_MESH_ID"] == "mesh-9" and env["ISTIO_META_CLUSTER_ID"] == "east"
