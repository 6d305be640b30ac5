"""Translation speed: `python benchmarks/translation.py [N ...]`.

For a generated mesh of N services (each with a VirtualService, a DestinationRule with 2 subsets
and 3 endpoints) it measures, for one proxy:

- cold: generation of every resource plus serialization, from a built snapshot;
- ceiling: building and serializing the same messages directly with protobuf setters, no
  translation logic at all (the protobuf floor the translator is compared with);
- 1-change: a new snapshot differing in one VirtualService, regenerated with the cache of the
  previous generations (median of five successive edits; snapshot building not included).

Times are CPU seconds of this process (the machine is shared: wall time would measure the
neighbours too).

Figures are printed as a table; nothing is asserted (targets live in the issue and the README).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2

sys.path.insert(0, os.path.dirname(__file__))

from meshgen import mesh_resources  # noqa: E402

from meshctl.generate import tls  # noqa: E402
from meshctl.generate.cache import GenerationCache  # noqa: E402
from meshctl.generate.core import ADS, istio_metadata  # noqa: E402
from meshctl.generate.httproute import default_retry_policy  # noqa: E402
from meshctl.generate.proxy import generate  # noqa: E402
from meshctl.model.snapshot import build_snapshot  # noqa: E402

PROXY = "svc0-0.ns0"


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def ceiling(count: int) -> None:
    """The same messages as the translator emits per service, built and serialized directly."""
    route_config = route_pb2.RouteConfiguration(name="8080")
    out = []
    for i in range(count):
        host = f"svc{i}.ns{i % 10}.svc.cluster.local"
        for subset in ("", "v1", "v2"):
            name = f"outbound|8080|{subset}|{host}"
            c = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS, alt_stat_name=name + ";")
            c.eds_cluster_config.service_name = name
            c.eds_cluster_config.eds_config.CopyFrom(ADS)
            c.connect_timeout.seconds = 10
            c.lb_policy = cluster_pb2.Cluster.LEAST_REQUEST
            t = c.circuit_breakers.thresholds.add()
            t.max_connections.value = 100
            t.max_pending_requests.value = t.max_requests.value = t.max_retries.value = 4294967295
            c.common_lb_config.SetInParent()
            istio_metadata(c.metadata, {"services": [{"host": host, "name": f"svc{i}", "namespace": f"ns{i % 10}"}],
                                        "config": f"/apis/networking.istio.io/v1/namespaces/ns{i % 10}/destination-rule/svc{i}"})
            context = tls.istio_mutual(f"outbound_.8080_.{subset}_.{host}", [f"spiffe://cluster.local/ns/ns{i % 10}/sa/svc{i}"],
                                       h2=False, metadata_exchange=True)
            tls.auto_mtls_matches(c, tls.socket(context))
            out.append(c.SerializeToString())
            cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
            group = cla.endpoints.add()
            group.locality.SetInParent()
            for _ in (range(3) if not subset else (range(2) if subset == "v1" else range(2, 3))):
                lb = group.lb_endpoints.add()
                lb.endpoint.address.socket_address.address = f"10.0.{i // 256 % 256}.{i % 256}"
                lb.endpoint.address.socket_address.port_value = 8080
                lb.health_status = health_check_pb2.HEALTHY
                lb.metadata.filter_metadata["envoy.transport_socket_match"].fields["tlsMode"].string_value = "istio"
                lb.metadata.filter_metadata["istio"].fields["workload"].string_value = f"svc{i};ns{i % 10};svc{i};;Kubernetes"
                lb.load_balancing_weight.value = 1
            group.load_balancing_weight.value = len(group.lb_endpoints)
            out.append(cla.SerializeToString())
        vhost = route_config.virtual_hosts.add(name=f"{host}:8080", domains=[host, host + ".", f"svc{i}.ns{i % 10}"])
        for subset, header in (("v2", True), ("v1", False)):
            route = vhost.routes.add()
            route.match.prefix = "/"
            if header:
                h = route.match.headers.add(name="end-user")
                h.string_match.exact = "jason"
            route.route.cluster = f"outbound|8080|{subset}|{host}"
            route.route.timeout.SetInParent()
            route.route.retry_policy.CopyFrom(default_retry_policy())
            route.decorator.operation = f"{host}:8080/*"
    out.append(route_config.SerializeToString())


def main(sizes: list[int]) -> None:
    print(f"# translation benchmark — {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'services':>9} {'cold ms':>9} {'services/s':>11} {'ceiling ms':>11} {'ceiling/s':>10} {'of ceiling':>10} {'1-change ms':>12}")
    with tempfile.TemporaryDirectory() as directory:
        for count in sizes:
            resources = mesh_resources(count, directory)
            changed = mesh_resources(count, directory, version="v1")
            snapshot = build_snapshot(resources)
            proxy = snapshot.proxy(PROXY)

            def cold() -> None:
                generate(snapshot, proxy).packed()

            cold_s = best_of(3, cold)
            ceiling_s = best_of(3, lambda: ceiling(count))
            cache = GenerationCache()
            generate(snapshot, proxy, cache=cache).packed()
            alternate = {r.name: r for r in changed if r.kind == "VirtualService"}
            current = list(resources)
            snapshot_before = snapshot
            warm = []
            for index in range(1, 6):
                edited = f"svc{index}"
                current = [r for r in current if not (r.kind == "VirtualService" and r.name == edited)]
                current.append(alternate[edited])
                next_snapshot = build_snapshot(current, previous=snapshot_before)
                snapshot_before = next_snapshot
                next_proxy = next_snapshot.proxy(PROXY)
                start = time.process_time()
                generate(next_snapshot, next_proxy, cache=cache).packed()
                warm.append(time.process_time() - start)
            print(f"{count:>9} {cold_s * 1e3:>9.1f} {count / cold_s:>11,.0f} {ceiling_s * 1e3:>11.1f} "
                  f"{count / ceiling_s:>10,.0f} {ceiling_s / cold_s:>10.0%} {statistics.median(warm) * 1e3:>12.2f}")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [100, 1000, 10000])
