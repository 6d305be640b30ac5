"""Injection webhook latency: `python benchmarks/webhook.py [--reviews 1000] [--connections 1]`.

`meshctl serve --webhook-address` in its own process, and AdmissionReviews of a Deployment's pod
(as the API server sends them: defaulted, generated name, owner reference, two containers with
probes) posted to `/inject` over HTTPS with TLS verified against the CA, on kept-alive
connections as the API server keeps them; each answer is checked to carry a patch. Prints
p50/p90/p99/max of the round trip (request written to answer read), the same for the handler
alone in this process (no HTTP, no TLS), and the machine. Target: p99 <= 10 ms. Asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from servebench import machine_description, percentile, print_table

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests" / "webhooks"))

from webhook_support import DEPLOYMENT_POD, SERVICE, Client, admission_review  # noqa: E402

from meshctl.loopback import free_port, wait_accepting  # noqa: E402


def _benchmark_pod() -> dict[str, Any]:
    """The tests' pod of Deployment reviews-v1, grown to what a real one carries: a probe, the
    service account token volume, a second container, the scheduler's defaults."""
    pod = copy.deepcopy(DEPLOYMENT_POD)
    spec = pod["spec"]
    app = spec["containers"][0]
    app["readinessProbe"] = {"httpGet": {"path": "/health", "port": 9080, "scheme": "HTTP"}, "timeoutSeconds": 1,
                             "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    app["volumeMounts"] = [{"name": "kube-api-access-x1", "readOnly": True,
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    app["terminationMessagePolicy"] = "File"
    spec["containers"].append({"name": "log-shipper", "image": "fluent-bit:3", "resources": {"requests": {"cpu": "10m"}}})
    spec["volumes"] = [{"name": "kube-api-access-x1", "projected": {"sources": [{"serviceAccountToken": {
        "expirationSeconds": 3607, "path": "token"}}]}}]
    spec.update(terminationGracePeriodSeconds=30, securityContext={}, enableServiceLinks=True)
    pod["status"] = {"phase": "Pending", "qosClass": "Burstable"}
    return pod


POD = _benchmark_pod()


def review(uid: int) -> bytes:
    return json.dumps(admission_review(POD, namespace="bookinfo", uid=f"bench-{uid}")).encode()


def post(client: Client, body: bytes) -> float:
    started = time.perf_counter()
    status, text = client.post("/inject", body)
    elapsed = time.perf_counter() - started
    answer = json.loads(text)
    patch = json.loads(base64.b64decode(answer["response"]["patch"]))
    assert status == 200 and answer["response"]["allowed"] and len(patch) > 10, answer
    return elapsed


def run_clients(port: int, roots: bytes, reviews: int, connections: int) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def one_connection(count: int, offset: int) -> None:
        client = Client(port, roots)
        post(client, review(-1 - offset))  # handshake and first request are not timed
        mine = [post(client, review(offset + n)) for n in range(count)]
        client.close()
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=one_connection, args=(reviews // connections, i * reviews)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def handler_alone(reviews: int) -> list[float]:
    from meshctl.inject.settings import InjectSettings
    from meshctl.security.ca import CertificateAuthority, self_signed_bundle
    from meshctl.webhooks.certificates import serving_credentials
    from meshctl.webhooks.server import WebhookServer

    ca = CertificateAuthority(self_signed_bundle("cluster.local"))
    server = WebhookServer(InjectSettings(), serving_credentials(ca, SERVICE))
    times = []
    for n in range(reviews):
        body = review(n)
        started = time.perf_counter()
        server.answer("POST", "/inject", "application/json", body)
        times.append(time.perf_counter() - started)
    return times


def start_serve(workdir: Path) -> tuple[subprocess.Popen[bytes], int, bytes]:
    """`meshctl serve --webhook-address` on a free port; the root of its CA directory, which the
    client verifies the webhook's certificate with (as the API server does with the caBundle)."""
    config, ca_dir, log = workdir / "mesh", workdir / "ca", workdir / "serve.log"
    config.mkdir()
    port = free_port()
    argv = [sys.executable, "-m", "meshctl", "serve", "--config-dir", str(config), "--xds-address",
            f"127.0.0.1:{free_port()}", "--debug-address", "", "--ca-address", "", "--ca-dir", str(ca_dir),
            "--webhook-address", f"127.0.0.1:{port}", "--log-level", "warning"]
    with log.open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    wait_accepting(port, 30, process, "meshctl serve", logs=[log])
    return process, port, (ca_dir / "root-cert.pem").read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshctl-webhook-bench-") as scratch:
        process, port, roots = start_serve(Path(scratch))
        try:
            times = run_clients(port, roots, args.reviews, args.connections)
        finally:
            process.terminate()
            process.wait(10)
    alone = handler_alone(args.reviews)
    rows = []
    for label, values in ((f"/inject over HTTPS, {args.connections} connection(s)", times), ("handler alone", alone)):
        ms = [value * 1000 for value in values]
        figures = (percentile(ms, 0.5), percentile(ms, 0.9), percentile(ms, 0.99), max(ms))
        rows.append((label, len(ms), *(f"{value:.2f}" for value in figures)))
    print(f"Injection webhook latency ({args.reviews} AdmissionReviews), ms; target p99 <= 10 ms")
    print_table(("", "reviews", "p50", "p90", "p99", "max"), rows)
    print(machine_description())


if __name__ == "__main__":
    main()
