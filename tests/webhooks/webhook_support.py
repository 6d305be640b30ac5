"""A webhook server on a thread of the test process, and a client speaking HTTPS to it the
way the API server does: TLS verified against the CA bundle, for the Service's name."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from meshctl.inject.settings import InjectSettings
from meshctl.security.ca import CertificateAuthority, self_signed_bundle
from meshctl.webhooks.serving import start_webhooks

SERVICE = "istiod.istio-system.svc"

# A pod of Deployment reviews-v1 as the API server hands it to the webhook: generated name,
# owner reference, defaults filled in, namespace only in the request.
DEPLOYMENT_POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
        "generateName": "reviews-v1-7d4f8c9b5-",
        "labels": {"app": "reviews", "version": "v1", "pod-template-hash": "7d4f8c9b5"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "reviews-v1-7d4f8c9b5",
                             "uid": "0f6b", "controller": True, "blockOwnerDeletion": True}],
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}],
    },
    "spec": {
        "serviceAccountName": "bookinfo-reviews",
        "containers": [{"name": "reviews", "image": "reviews:1", "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 9080, "protocol": "TCP"}],
                        "terminationMessagePath": "/dev/termination-log", "resources": {}}],
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
    },
    "status": {},
}


class Client:
    """One kept-alive HTTPS connection to the webhooks, verifying the server as `service`."""

    def __init__(self, port: int, ca_pem: bytes, service: str = SERVICE) -> None:
        context = ssl.create_default_context(cadata=ca_pem.decode())
        self.connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's net/http does
        self.connection.sock = context.wrap_socket(raw, server_hostname=service)

    def post(self, path: str, body: bytes, content_type: str = "application/json",
             method: str = "POST") -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers={"Content-Type": content_type})
        response = self.connection.getresponse()
        return response.status, response.read()

    def review(self, path: str, review: dict[str, Any]) -> dict[str, Any]:
        status, body = self.post(path, json.dumps(review).encode())
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer

    def close(self) -> None:
        self.connection.close()


def admission_review(obj: dict[str, Any], *, namespace: str = "default", operation: str = "CREATE",
                     uid: str = "7b2e-01", dry_run: bool = False, version: str = "v1") -> dict[str, Any]:
    """An AdmissionReview as the API server sends it for `obj`."""
    group, _, api = str(obj.get("apiVersion", "v1")).rpartition("/")
    kind = str(obj.get("kind", ""))
    return {"apiVersion": f"admission.k8s.io/{version}", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": group, "version": api, "kind": kind},
        "resource": {"group": group, "version": api, "resource": kind.lower() + "s"},
        "namespace": namespace, "operation": operation, "userInfo": {"username": "system:serviceaccount:kube-system:rs"},
        "object": obj, "oldObject": None, "dryRun": dry_run, "options": {"apiVersion": "meta.k8s.io/v1"},
        "name": obj.get("metadata", {}).get("name", "")}}


def patch_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    response = answer["response"]
    assert response["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch


@contextmanager
def running_webhooks(settings: InjectSettings | None = None) -> Iterator[tuple[int, bytes]]:
    """(port, CA bundle) of webhooks served by a thread's event loop until the block ends."""
    ca = CertificateAuthority(self_signed_bundle("cluster.local"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(start_webhooks("127.0.0.1:0", settings or InjectSettings(), ca),
                                              loop).result(10)
    try:
        yield server.port, ca.roots_pem
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
