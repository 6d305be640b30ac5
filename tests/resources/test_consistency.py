"""The consistency check finds every dangling or unused name, and nothing else."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2
from google.protobuf.message import Message

from meshctl.generate.core import ADS, sds_secret_config
from meshctl.generate.protobuf import typed
from meshctl.model.secrets import agent_serves
from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, Packed, ProxyResources
from meshctl.resources.consistency import problems


def _eds_cluster(name: str, service: str = "") -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    cluster.eds_cluster_config.eds_config.CopyFrom(ADS)
    cluster.eds_cluster_config.service_name = service
    return cluster


def _hcm(route: str) -> listener_components_pb2.Filter:
    manager = hcm_pb2.HttpConnectionManager(stat_prefix="x")
    manager.rds.config_source.CopyFrom(ADS)
    manager.rds.route_config_name = route
    return listener_components_pb2.Filter(name="envoy.filters.network.http_connection_manager", typed_config=typed(manager))


def _listener(name: str, *routes: str, default: str = "") -> listener_pb2.Listener:
    listener = listener_pb2.Listener(name=name)
    for route in routes:
        listener.filter_chains.add().filters.append(_hcm(route))
    if default:
        listener.default_filter_chain.filters.append(_hcm(default))
    return listener


def _tls(*secrets: secret_pb2.SdsSecretConfig, downstream: bool = False) -> base_pb2.TransportSocket:
    context = tls_pb2.DownstreamTlsContext() if downstream else tls_pb2.UpstreamTlsContext()
    common = context.common_tls_context
    for config in secrets[:-1]:
        common.tls_certificate_sds_secret_configs.append(config)
    common.combined_validation_context.validation_context_sds_secret_config.CopyFrom(secrets[-1])
    return base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=typed(context))


def _ads_secret(name: str) -> secret_pb2.SdsSecretConfig:
    config = secret_pb2.SdsSecretConfig(name=name)
    config.sds_config.CopyFrom(ADS)
    return config


def _resources(*messages: Message) -> dict[str, dict[str, Packed]]:
    out: dict[str, dict[str, Packed]] = {CLUSTER: {}, ENDPOINT: {}, LISTENER: {}, ROUTE: {}}
    for message in messages:
        type_url, name = {
            cluster_pb2.Cluster: lambda m: (CLUSTER, m.name),
            endpoint_pb2.ClusterLoadAssignment: lambda m: (ENDPOINT, m.cluster_name),
            listener_pb2.Listener: lambda m: (LISTENER, m.name),
            route_pb2.RouteConfiguration: lambda m: (ROUTE, m.name),
            secret_pb2.Secret: lambda m: (SECRET, m.name),
        }[type(message)](message)
        out.setdefault(type_url, {})[name] = Packed.of(name, message)
    return out


def _check(resources: ProxyResources) -> list[str]:
    return problems(resources, agent_serves)


def _consistent() -> list[Message]:
    upstream = _eds_cluster("outbound|80||a")
    upstream.transport_socket.CopyFrom(_tls(sds_secret_config("default"), sds_secret_config("ROOTCA")))
    listener = _listener("0.0.0.0_80", "80", default="inbound|80||")
    listener.filter_chains[0].transport_socket.CopyFrom(
        _tls(sds_secret_config("default"), sds_secret_config("ROOTCA"), downstream=True))
    return [
        upstream, endpoint_pb2.ClusterLoadAssignment(cluster_name="outbound|80||a"),
        _eds_cluster("outbound|80|v1|a", service="svc-a-v1"), endpoint_pb2.ClusterLoadAssignment(cluster_name="svc-a-v1"),
        cluster_pb2.Cluster(name="PassthroughCluster", type=cluster_pb2.Cluster.ORIGINAL_DST),
        listener, route_pb2.RouteConfiguration(name="80"), route_pb2.RouteConfiguration(name="inbound|80||"),
    ]


def test_a_consistent_set_has_no_problems() -> None:
    assert _check(_resources(*_consistent())) == []


@pytest.mark.parametrize(("change", "expected"), [
    (lambda ms: [m for m in ms if not (isinstance(m, endpoint_pb2.ClusterLoadAssignment) and m.cluster_name == "svc-a-v1")],
     ["CDS outbound|80|v1|a: its ClusterLoadAssignment 'svc-a-v1' is missing from EDS"]),
    (lambda ms: [*ms, endpoint_pb2.ClusterLoadAssignment(cluster_name="PassthroughCluster")],
     ["EDS PassthroughCluster: no CDS cluster of type EDS has this service name"]),
    (lambda ms: [*ms, endpoint_pb2.ClusterLoadAssignment(cluster_name="outbound|80|v1|a")],
     ["EDS outbound|80|v1|a: no CDS cluster of type EDS has this service name"]),
    (lambda ms: [m for m in ms if not (isinstance(m, route_pb2.RouteConfiguration) and m.name == "inbound|80||")],
     ["LDS 0.0.0.0_80: its route configuration 'inbound|80||' is missing from RDS"]),
    (lambda ms: [*ms, _listener("extra", "", "80"), _listener("second", "80", "8080")],
     ["LDS extra: its route configuration '' is missing from RDS",
      "LDS second: its route configuration '8080' is missing from RDS"]),
    (lambda ms: [*ms, route_pb2.RouteConfiguration(name="orphan")],
     ["RDS orphan: no listener names this route configuration"]),
])
def test_dangling_and_unused_names(change, expected: list[str]) -> None:
    assert _check(_resources(*change(_consistent()))) == expected


def _with_cluster_socket(socket: base_pb2.TransportSocket, *, in_match: bool = False,
                         extra: Iterable[Message] = ()) -> list[str]:
    cluster = cluster_pb2.Cluster(name="outbound|443||b", type=cluster_pb2.Cluster.STRICT_DNS)
    if in_match:
        cluster.transport_socket_matches.add(name="tlsMode-istio").transport_socket.CopyFrom(socket)
    else:
        cluster.transport_socket.CopyFrom(socket)
    return _check(_resources(*_consistent(), cluster, *extra))


def test_secrets_from_the_node_agent_and_over_ads() -> None:
    files = _tls(sds_secret_config("file-cert:/c.pem~/k.pem"), sds_secret_config("file-root:/ca.pem"))
    assert _with_cluster_socket(files) == []
    assert _with_cluster_socket(_tls(sds_secret_config("default"), sds_secret_config("kubernetes://x")), in_match=True) == [
        "CDS outbound|443||b: SDS secret 'kubernetes://x' is not one the node agent serves"]
    over_ads = _tls(_ads_secret("kubernetes://cred"), _ads_secret("kubernetes://cred-cacert"))
    assert _with_cluster_socket(over_ads) == [
        "CDS outbound|443||b: SDS secret 'kubernetes://cred' is fetched over ADS but not served",
        "CDS outbound|443||b: SDS secret 'kubernetes://cred-cacert' is fetched over ADS but not served",
    ]
    served = [secret_pb2.Secret(name="kubernetes://cred"), secret_pb2.Secret(name="kubernetes://cred-cacert")]
    assert _with_cluster_socket(over_ads, extra=served) == []
    assert _with_cluster_socket(_tls(_ads_secret("default"), _ads_secret("ROOTCA"))) == [
        "CDS outbound|443||b: SDS secret 'default' is fetched over ADS but not served",
        "CDS outbound|443||b: SDS secret 'ROOTCA' is fetched over ADS but not served",
    ]


def test_secrets_of_listener_chains() -> None:
    listener = _listener("0.0.0.0_443", "443")
    listener.filter_chains[0].transport_socket.CopyFrom(_tls(sds_secret_config("nope"), downstream=True))
    found = _check(_resources(*_consistent(), listener, route_pb2.RouteConfiguration(name="443")))
    assert found == ["LDS 0.0.0.0_443: SDS secret 'nope' is not one the node agent serves"]
