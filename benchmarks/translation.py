"""Translation speed: `python benchmarks/translation.py [--edits E] [N ...]`.

For a generated mesh of N services (each with a VirtualService, a DestinationRule with 2 subsets
and 3 endpoints) it measures, for one proxy:

- cold: generation of every resource plus packing (`ProxyConfig.packed`: deterministic
  serialization, the `Any`, the content version), without a generation cache, from a built
  snapshot (best of three: the snapshot's own lookups, the proxy's scope and each service's
  endpoints, are made by the first run, as serve's second proxy finds them; a first run in a
  fresh process, `meshctl translate`'s case, takes 10-15 % longer);
- ceiling: the same per-service messages (3 clusters, 3 assignments, a virtual host) and the
  route configuration built from scratch with protobuf setters and serialized deterministically,
  no translation logic at all. Before timing, their bytes are checked to equal the translator's
  (the run stops if not). Left out of the ceiling and so counted against the translator: the
  proxy's 3 listeners and 4 fixed clusters (constant in N) and packing's `Any` and version hash;
- 1-change: a new snapshot differing in one VirtualService, regenerated with the cache of the
  previous generations (median of E successive edits, 30 by default: one edit takes about a
  millisecond, so a few would measure the machine's neighbours; snapshot building not included).

Times are CPU seconds of this process (the machine is shared: wall time would measure the
neighbours too).

Figures are printed as a table; nothing is asserted (targets live in the issue and the README).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

sys.path.insert(0, os.path.dirname(__file__))

from meshgen import mesh_resources  # noqa: E402

from meshctl.generate.cache import GenerationCache  # noqa: E402
from meshctl.generate.proxy import generate  # noqa: E402
from meshctl.model.snapshot import MeshSnapshot, build_snapshot  # noqa: E402
from meshctl.resources import CLUSTER, ENDPOINT, ROUTE, Packed  # noqa: E402

PROXY = "svc0-0.ns0"


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def ceiling(count: int, addresses: Sequence[str]) -> dict[str, bytes]:
    """The translator's per-service output for PROXY, built with plain protobuf setters.

    Three clusters and three assignments per service and the route configuration with one
    virtual host per service, each serialized deterministically, as `Packed` does. Every
    message is built from scratch (no template, no shared bytes: protobuf building alone),
    and `main` checks that the bytes equal the translator's. `addresses` are the services'
    cluster IPs (assigned by the snapshot, an input here, not logic)."""
    out: dict[str, bytes] = {}
    route_config = route_pb2.RouteConfiguration(name="8080", ignore_port_in_host_matching=True)
    route_config.validate_clusters.SetInParent()
    route_config.max_direct_response_body_size_bytes.value = 1048576
    for i in sorted(range(count), key=lambda i: f"{i}."):  # virtual hosts in host name order
        ns = f"ns{i % 10}"
        host = f"svc{i}.{ns}.svc.cluster.local"
        spiffe = f"spiffe://cluster.local/ns/{ns}/sa/svc{i}"
        for subset in ("", "v1", "v2"):
            name = f"outbound|8080|{subset}|{host}"
            c = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS, alt_stat_name=name + ";")
            c.eds_cluster_config.service_name = name
            eds = c.eds_cluster_config.eds_config
            eds.ads.SetInParent()
            eds.initial_fetch_timeout.SetInParent()
            eds.resource_api_version = config_source_pb2.V3
            c.connect_timeout.seconds = 10
            c.lb_policy = cluster_pb2.Cluster.LEAST_REQUEST
            t = c.circuit_breakers.thresholds.add()
            t.max_connections.value = 100
            t.max_pending_requests.value = t.max_requests.value = t.max_retries.value = 4294967295
            c.common_lb_config.SetInParent()
            istio = c.metadata.filter_metadata["istio"]
            istio.fields["config"].string_value = f"/apis/networking.istio.io/v1/namespaces/{ns}/destination-rule/svc{i}"
            entry = istio.fields["services"].list_value.values.add().struct_value
            entry.fields["host"].string_value = host
            entry.fields["name"].string_value = f"svc{i}"
            entry.fields["namespace"].string_value = ns
            if subset:
                istio.fields["subset"].string_value = subset
            context = tls_pb2.UpstreamTlsContext(sni=f"outbound_.8080_.{subset}_.{host}")
            common = context.common_tls_context
            common.tls_params.tls_minimum_protocol_version = common_pb2.TlsParameters.TLSv1_2
            common.tls_params.tls_maximum_protocol_version = common_pb2.TlsParameters.TLSv1_3
            common.alpn_protocols.extend(("istio-peer-exchange", "istio"))
            for secret, holder in (("default", common.tls_certificate_sds_secret_configs.add()),
                                   ("ROOTCA", common.combined_validation_context.validation_context_sds_secret_config)):
                holder.name = secret
                source = holder.sds_config
                source.resource_api_version = config_source_pb2.V3
                source.initial_fetch_timeout.SetInParent()
                api = source.api_config_source
                api.api_type = config_source_pb2.ApiConfigSource.GRPC
                api.set_node_on_first_message_only = True
                api.transport_api_version = config_source_pb2.V3
                api.grpc_services.add().envoy_grpc.cluster_name = "sds-grpc"
            san = common.combined_validation_context.default_validation_context.match_typed_subject_alt_names.add()
            san.san_type = common_pb2.SubjectAltNameMatcher.URI
            san.matcher.exact = spiffe
            mtls = c.transport_socket_matches.add(name="tlsMode-istio")
            mtls.match.fields["tlsMode"].string_value = "istio"
            mtls.transport_socket.name = "envoy.transport_sockets.tls"
            mtls.transport_socket.typed_config.Pack(context, deterministic=True)
            plain = c.transport_socket_matches.add(name="tlsMode-disabled")
            plain.match.SetInParent()
            plain.transport_socket.name = "envoy.transport_sockets.raw_buffer"
            plain.transport_socket.typed_config.Pack(raw_buffer_pb2.RawBuffer())
            out[f"cluster {name}"] = c.SerializeToString(deterministic=True)
            cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
            group = cla.endpoints.add()
            group.locality.SetInParent()
            pods = range(3) if not subset else (range(2) if subset == "v1" else range(2, 3))
            for j in pods:
                index = i * 3 + j
                lb = group.lb_endpoints.add()
                lb.endpoint.address.socket_address.address = f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
                lb.endpoint.address.socket_address.port_value = 8080
                lb.health_status = health_check_pb2.HEALTHY
                lb.metadata.filter_metadata["envoy.transport_socket_match"].fields["tlsMode"].string_value = "istio"
                lb.metadata.filter_metadata["istio"].fields["workload"].string_value = \
                    f"svc{i}-{j};{ns};svc{i};v{1 if j < 2 else 2};Kubernetes"
                lb.load_balancing_weight.value = 1
            group.load_balancing_weight.value = len(pods)
            out[f"assignment {name}"] = cla.SerializeToString(deterministic=True)
        local = i % 10 == 0  # PROXY's namespace: the short name is a domain too
        short = [f"svc{i}", f"svc{i}.{ns}.svc", f"svc{i}.{ns}"] if local else [f"svc{i}.{ns}", f"svc{i}.{ns}.svc"]
        vhost = route_config.virtual_hosts.add(name=f"{host}:8080", domains=[host, host + ".", *short, addresses[i]],
                                               include_request_attempt_count=True)
        for subset, header in (("v2", True), ("v1", False)):
            route = vhost.routes.add()
            route.match.prefix = "/"
            if header:
                route.match.case_sensitive.value = True
                h = route.match.headers.add(name="end-user")
                h.string_match.exact = "jason"
            action = route.route
            action.cluster = f"outbound|8080|{subset}|{host}"
            action.timeout.SetInParent()
            retry = action.retry_policy
            retry.retry_on = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
            retry.num_retries.value = 2
            predicate = retry.retry_host_predicate.add(name="envoy.retry_host_predicates.previous_hosts")
            predicate.typed_config.Pack(previous_hosts_pb2.PreviousHostsPredicate())
            retry.host_selection_retry_max_attempts = 5
            action.max_stream_duration.grpc_timeout_header_max.SetInParent()
            route.metadata.filter_metadata["istio"].fields["config"].string_value = \
                f"/apis/networking.istio.io/v1/namespaces/{ns}/virtual-service/svc{i}"
            route.decorator.operation = f"{host}:8080/*"
    catch_all = route_config.virtual_hosts.add(name="allow_any", domains=["*"], include_request_attempt_count=True)
    route = catch_all.routes.add(name="allow_any")
    route.match.prefix = "/"
    route.route.cluster = "PassthroughCluster"
    route.route.timeout.SetInParent()
    route.route.max_stream_duration.grpc_timeout_header_max.SetInParent()
    out["route 8080"] = route_config.SerializeToString(deterministic=True)
    return out


def service_addresses(snapshot: MeshSnapshot, count: int) -> list[str]:
    by_host = {service.hostname: service.address for service in snapshot.registry.services}
    return [by_host[f"svc{i}.ns{i % 10}.svc.cluster.local"] for i in range(count)]


def _check_same_output(count: int, built: dict[str, bytes], packed: dict[str, dict[str, Packed]]) -> None:
    """A ceiling is only one if it builds what the translator emits: the same bytes."""
    kinds = {"cluster": CLUSTER, "assignment": ENDPOINT, "route": ROUTE}
    differ = [key for key, value in built.items()
              if packed[kinds[key.split(" ")[0]]][key.split(" ", 1)[1]].value != value]
    if differ:
        raise SystemExit(f"{len(differ)} of {len(built)} ceiling messages differ from the translator's, "
                         f"first: {differ[0]} ({count} services)")


def main(sizes: list[int], edits: int = 30) -> None:
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

            addresses = service_addresses(snapshot, count)
            _check_same_output(count, ceiling(count, addresses), generate(snapshot, proxy).packed())
            cold_s = best_of(3, cold)
            ceiling_s = best_of(3, lambda: ceiling(count, addresses))
            cache = GenerationCache()
            generate(snapshot, proxy, cache=cache).packed()
            alternate = {r.name: r for r in changed if r.kind == "VirtualService"}
            current = list(resources)
            snapshot_before = snapshot
            warm = []
            for index in range(1, min(edits, count - 1) + 1):
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=30, help="VirtualService edits timed per mesh size")
    parser.add_argument("services", type=int, nargs="*", default=[100, 1000, 10000], help="mesh sizes")
    options = parser.parse_args()
    main(options.services, options.edits)
