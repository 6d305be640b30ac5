"""A cluster for the Kubernetes benchmarks, served by the API emulator of tests/k8s in a process
of its own (as a real API server is another process than serve): `python kube_cluster.py
SERVICES PODS [CLIENT_NAME=IP ...]` seeds it and answers `{"url": ...}`, then takes one command
per line: `slice I N` rewrites Service I's EndpointSlice with its first N pods and answers
`{"written": UNIX TIME}` (the moment the watch event left), `quit` ends it.

The cluster: SERVICES Services over ten namespaces, PODS pods each (Ready, on ten Nodes with
zones, IPs from 10.0.0.0/8), one EndpointSlice per Service listing them by targetRef; client
pods (and Sidecars seeing every namespace) in `clients` for the Envoys a benchmark connects.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests" / "k8s"))

from emulator import BackgroundEmulator, MeshEmulator, write_kubeconfig  # noqa: E402

__all__ = ["CLIENT_NAMESPACE", "cluster", "endpoint_slice", "write_kubeconfig"]

NAMESPACES = 10
NODES = 10
PORT = 8080
CLIENT_NAMESPACE = "clients"
SLICES = ("discovery.k8s.io", "endpointslices")

Objects = list[tuple[tuple[str, str], dict[str, Any]]]


def _pod_ip(index: int) -> str:
    return f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"


def endpoint_slice(service: int, pods: int, listed: int | None = None) -> dict[str, Any]:
    """Service `service`'s slice, listing its first `listed` pods (all by default)."""
    namespace = f"ns{service % NAMESPACES}"
    endpoints = [
        {"addresses": [_pod_ip(service * pods + j)], "conditions": {"ready": True},
         "nodeName": f"node-{(service * pods + j) % NODES}",
         "targetRef": {"kind": "Pod", "name": f"svc{service}-{j}", "namespace": namespace}}
        for j in range(pods if listed is None else listed)
    ]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"svc{service}-x7k2p", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": f"svc{service}"}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": [{"name": "http", "port": PORT, "protocol": "TCP"}]}


def cluster(services: int, pods: int) -> Objects:
    """(resource, object) for every Namespace, Node, Service, Pod and EndpointSlice."""
    objects: Objects = []
    for name in (*(f"ns{k}" for k in range(NAMESPACES)), CLIENT_NAMESPACE):
        objects.append((("", "namespaces"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
    for k in range(NODES):
        objects.append((("", "nodes"), {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{k}", "labels": {
            "topology.kubernetes.io/region": "eu-west1", "topology.kubernetes.io/zone": f"eu-west1-{'abc'[k % 3]}"}}}))
    for i in range(services):
        namespace = f"ns{i % NAMESPACES}"
        objects.append((("", "services"), {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc{i}", "namespace": namespace},
            "spec": {"ports": [{"name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP"}],
                     "selector": {"app": f"svc{i}"}, "clusterIP": f"172.16.{i // 256}.{i % 256}", "type": "ClusterIP"}}))
        for j in range(pods):
            index = i * pods + j
            objects.append((("", "pods"), {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"svc{i}-{j}", "namespace": namespace,
                             "labels": {"app": f"svc{i}", "version": f"v{1 + j % 2}"}},
                "spec": {"serviceAccountName": f"svc{i}", "nodeName": f"node-{index % NODES}",
                         "containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": PORT}]}]},
                "status": {"phase": "Running", "podIP": _pod_ip(index),
                           "conditions": [{"type": "Ready", "status": "True"}]}}))
        objects.append((SLICES, endpoint_slice(i, pods)))
    return objects


def clients(named: dict[str, str]) -> Objects:
    """Client pods (interception NONE) and Sidecars binding each one's address, seeing everything."""
    objects: Objects = []
    for name, ip in named.items():
        objects.append((("", "pods"), {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": CLIENT_NAMESPACE, "labels": {"app": "client", "client": name},
                         "annotations": {"sidecar.istio.io/interceptionMode": "NONE"}},
            "spec": {"serviceAccountName": "client", "containers": [{"name": "app", "image": "app"}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}}))
        objects.append((("networking.istio.io", "sidecars"), {
            "apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": name, "namespace": CLIENT_NAMESPACE},
            "spec": {"workloadSelector": {"labels": {"client": name}},
                     "egress": [{"port": {"number": PORT, "protocol": "HTTP", "name": "http"}, "bind": ip,
                                 "captureMode": "NONE", "hosts": ["*/*"]}]}}))
    return objects


def seed(emulator: MeshEmulator, objects: Objects) -> None:
    def write() -> None:
        for resource, obj in objects:
            emulator.store.create(resource, obj)

    emulator._on_loop(write)


def main() -> None:
    services, pods = int(sys.argv[1]), int(sys.argv[2])
    named = dict(arg.split("=", 1) for arg in sys.argv[3:])
    with BackgroundEmulator() as background:
        emulator = background.emulator
        assert emulator is not None
        seed(emulator, cluster(services, pods) + clients(named))
        print(json.dumps({"url": background.url}), flush=True)
        for line in sys.stdin:
            command = line.split()
            if command[:1] == ["quit"]:
                break
            if command[:1] == ["slice"]:
                changed = endpoint_slice(int(command[1]), pods, int(command[2]))
                key = (changed["metadata"]["namespace"], changed["metadata"]["name"])

                def write() -> float:
                    emulator.store.update(SLICES, key, lambda _: changed)
                    return time.time()

                print(json.dumps({"written": emulator._on_loop(write)}), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {line.strip()!r}"}), flush=True)


if __name__ == "__main__":
    main()
