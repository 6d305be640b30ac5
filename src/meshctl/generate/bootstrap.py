"""Envoy bootstraps: one that runs Envoy as a workload's sidecar against `meshctl serve`, and a
static one that lets `envoy --mode validate` judge generated config.

The sidecar bootstrap is what `meshctl agent` starts Envoy with (and `meshctl bootstrap`
prints): xDS from serve, secrets from the agent's SDS socket. This module is imported by the
agent at start, so it imports only what that bootstrap needs.

Validation turns the dynamic pieces into static ones (EDS clusters get their endpoints inline,
RDS listeners get their routes inline) so Envoy checks every resource and every reference
between them, exactly the way it would on an ADS push, without a control plane.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from meshctl.generate.protobuf import typed
from meshctl.model.proxy import agent_metadata
from meshctl.model.secrets import (AGENT_CLUSTER, AGENT_SOCKET, AUTH_MUTUAL_TLS, AUTH_NONE, ROOT_CERTIFICATE,
                                   WORKLOAD_CERTIFICATE)

if TYPE_CHECKING:
    from meshctl.generate.proxy import ProxyConfig
    from meshctl.model.meshconfig import MeshConfig
    from meshctl.model.proxy import Proxy

__all__ = [
    "CONTROL_PLANE_NAME",
    "HTTP_OPTIONS_KEY",
    "XDS_CLUSTER",
    "ads_bootstrap",
    "h2_options",
    "sds_cluster",
    "static_bootstrap",
]

XDS_CLUSTER = "xds-grpc"
CONTROL_PLANE_NAME = "istiod.istio-system.svc"
HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def h2_options() -> http_protocol_options_pb2.HttpProtocolOptions:
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.SetInParent()
    return options


def sds_cluster(socket: str = AGENT_SOCKET) -> cluster_pb2.Cluster:
    """The `sds-grpc` cluster every Istio TLS context refers to: the agent's Unix socket."""
    cluster = cluster_pb2.Cluster(name=AGENT_CLUSTER, type=cluster_pb2.Cluster.STATIC)
    cluster.connect_timeout.seconds = 1
    cluster.typed_extension_protocol_options[HTTP_OPTIONS_KEY].CopyFrom(typed(h2_options()))
    endpoint = cluster.load_assignment.endpoints.add().lb_endpoints.add().endpoint
    cluster.load_assignment.cluster_name = AGENT_CLUSTER
    endpoint.address.pipe.path = socket
    return cluster


def _control_plane_cluster(name: str, addresses: Sequence[tuple[str, int]]) -> cluster_pb2.Cluster:
    """A static HTTP/2 cluster to meshctl serve (xDS is gRPC), one endpoint per
    replica, with TCP keepalives so Envoy notices a dead server and reconnects: a new stream
    goes to the next endpoint (round robin), so a replica that died is left behind at once."""
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.STATIC)
    if not all(_is_ip(host) for host, _ in addresses):
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
    cluster.connect_timeout.seconds = 1
    cluster.typed_extension_protocol_options[HTTP_OPTIONS_KEY].CopyFrom(typed(h2_options()))
    threshold = cluster.circuit_breakers.thresholds.add()
    threshold.max_connections.value = threshold.max_pending_requests.value = 100000
    threshold.max_requests.value = threshold.max_retries.value = 100000
    keepalive = cluster.upstream_connection_options.tcp_keepalive
    keepalive.keepalive_time.value = 300
    keepalive.keepalive_interval.value = 30
    cluster.load_assignment.cluster_name = name
    locality = cluster.load_assignment.endpoints.add()
    for host, port in addresses:
        socket = locality.lb_endpoints.add().endpoint.address.socket_address
        socket.address = host
        socket.port_value = port
    return cluster


def _is_ip(host: str) -> bool:
    from meshctl.config.values import is_ip

    return is_ip(host)


def _mutual_tls(cluster: cluster_pb2.Cluster) -> None:
    """TLS to the control plane with the workload's certificate (from the agent), checking the
    control plane's against the mesh roots and its name: the connection proves who Envoy is."""
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    from meshctl.generate.core import sds_secret_config

    context = tls_pb2.UpstreamTlsContext(sni=CONTROL_PLANE_NAME)
    common = context.common_tls_context
    common.alpn_protocols.append("h2")
    common.tls_certificate_sds_secret_configs.append(sds_secret_config(WORKLOAD_CERTIFICATE))
    combined = common.combined_validation_context
    combined.default_validation_context.match_subject_alt_names.add(exact=CONTROL_PLANE_NAME)
    combined.validation_context_sds_secret_config.CopyFrom(sds_secret_config(ROOT_CERTIFICATE))
    cluster.transport_socket.name = "envoy.transport_sockets.tls"
    cluster.transport_socket.typed_config.CopyFrom(typed(context))


def ads_bootstrap(proxy: Proxy, xds_host: str, xds_port: int, *, admin_port: int, delta: bool = False,
                  service_account: str = "default", sds_socket: str = AGENT_SOCKET,
                  more_replicas: Sequence[tuple[str, int]] = (),
                  mesh: MeshConfig | None = None, control_plane_auth: str = AUTH_NONE) -> bootstrap_pb2.Bootstrap:
    """A bootstrap that makes Envoy this workload's proxy (its sidecar, or its gateway): Istio's
    node id and metadata, every dynamic resource over one ADS stream to `xds_host:xds_port` or
    any of `more_replicas` (the stream reconnects to another when its replica goes away), and
    its certificates from the agent at `sds_socket`. With MUTUAL_TLS, Envoy connects to the
    control plane with its workload certificate (serve's `--xds-mtls-address`), which proves its
    identity.

    The mesh's `defaultConfig.proxyMetadata` reaches the node metadata as istio-agent passes it
    (`ISTIO_META_NAME` becomes `NAME`), then the proxy's own metadata (what its pod's
    `proxy.istio.io/config` adds, `model.proxy.workload_metadata`), and the part of its
    ProxyConfig istiod reads (`Proxy.proxy_config`: its pod's proxyHeaders) as PROXY_CONFIG."""
    bootstrap = bootstrap_pb2.Bootstrap()
    node = bootstrap.node
    node.id = proxy.node_id
    owner = proxy.workload.owner if proxy.workload else proxy.pod_name
    node.cluster = f"{owner}.{proxy.namespace}"
    node.metadata.update({
        "NAMESPACE": proxy.namespace,
        "LABELS": dict(proxy.labels),
        "INTERCEPTION_MODE": proxy.interception,
        "CLUSTER_ID": proxy.cluster_id,
        "ISTIO_VERSION": proxy.istio_version,
        "SERVICE_ACCOUNT": service_account,
        "WORKLOAD_NAME": owner,
        "INSTANCE_IPS": proxy.ip,
        "POD_NAME": proxy.pod_name,
    })
    if mesh is not None:
        node.metadata.update(agent_metadata(mesh.default_config.view.proxy_metadata))
    node.metadata.update(proxy.metadata)
    if proxy.proxy_config and "PROXY_CONFIG" not in proxy.metadata:
        node.metadata.update({"PROXY_CONFIG": json.loads(proxy.proxy_config)})
    dynamic = bootstrap.dynamic_resources
    ads = dynamic.ads_config
    ads.api_type = config_source_pb2.ApiConfigSource.DELTA_GRPC if delta else config_source_pb2.ApiConfigSource.GRPC
    ads.transport_api_version = config_source_pb2.V3
    ads.set_node_on_first_message_only = True
    ads.grpc_services.add().envoy_grpc.cluster_name = XDS_CLUSTER
    for source in (dynamic.cds_config, dynamic.lds_config):
        source.ads.SetInParent()
        source.initial_fetch_timeout.SetInParent()
        source.resource_api_version = config_source_pb2.V3
    static = bootstrap.static_resources
    control_plane = _control_plane_cluster(XDS_CLUSTER, [(xds_host, xds_port), *more_replicas])
    if control_plane_auth == AUTH_MUTUAL_TLS:
        _mutual_tls(control_plane)
    static.clusters.append(control_plane)
    static.clusters.append(sds_cluster(sds_socket))
    admin = bootstrap.admin.address.socket_address
    admin.address = "127.0.0.1"
    admin.port_value = admin_port
    return bootstrap


def static_bootstrap(proxy: Proxy, config: ProxyConfig) -> bootstrap_pb2.Bootstrap:
    """Every generated resource as static config: EDS inlined into clusters, RDS into listeners."""
    bootstrap = bootstrap_pb2.Bootstrap()
    bootstrap.node.id = proxy.node_id
    bootstrap.node.cluster = proxy.workload.owner if proxy.workload else proxy.pod_name
    assignments = {cla.cluster_name: cla for cla in config.endpoints}
    routes = {route.name: route for route in config.routes}
    static = bootstrap.static_resources
    for cluster in config.clusters:
        copy = static.clusters.add()
        copy.CopyFrom(cluster)
        if copy.type == cluster_pb2.Cluster.EDS:
            name = copy.eds_cluster_config.service_name or copy.name
            copy.ClearField("eds_cluster_config")
            copy.type = cluster_pb2.Cluster.STATIC
            copy.load_assignment.CopyFrom(assignments.get(name) or endpoint_pb2.ClusterLoadAssignment())
            copy.load_assignment.cluster_name = copy.name
    static.clusters.append(sds_cluster())
    for listener in config.listeners:
        copy = static.listeners.add()
        copy.CopyFrom(listener)
        _inline_routes(copy, routes)
    _static_secrets(static)
    return bootstrap


def _static_secrets(static: bootstrap_pb2.Bootstrap.StaticResources) -> None:
    """Secrets fetched over ADS (a gateway's credentialName) become static secrets, so Envoy
    checks the TLS contexts naming them without a control plane. Their content is a stand-in
    (a throwaway key and self-signed certificate made here): validation judges the config, and
    no real private key is ever written out for it."""
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    wanted: dict[str, bool] = {}
    for socket in _transport_sockets(static):
        kind = tls_pb2.DownstreamTlsContext if "Downstream" in socket.typed_config.type_url else tls_pb2.UpstreamTlsContext
        if not socket.typed_config.type_url.endswith(kind.DESCRIPTOR.full_name):
            continue
        context = kind.FromString(socket.typed_config.value)
        common = context.common_tls_context
        configs = [(config, False) for config in common.tls_certificate_sds_secret_configs]
        if common.HasField("combined_validation_context"):
            configs.append((common.combined_validation_context.validation_context_sds_secret_config, True))
        changed = False
        for config, validation in configs:
            if config.sds_config.HasField("ads"):
                config.ClearField("sds_config")
                wanted[config.name] = validation
                changed = True
        if changed:
            socket.typed_config.CopyFrom(typed(context))
    if wanted:
        key_pem, cert_pem = _stand_in_certificate()
        for name, validation in wanted.items():
            secret = static.secrets.add(name=name)
            if validation:
                secret.validation_context.trusted_ca.inline_bytes = cert_pem
            else:
                secret.tls_certificate.certificate_chain.inline_bytes = cert_pem
                secret.tls_certificate.private_key.inline_bytes = key_pem


def _transport_sockets(static: bootstrap_pb2.Bootstrap.StaticResources) -> list[base_pb2.TransportSocket]:
    sockets: list[base_pb2.TransportSocket] = []
    for cluster in static.clusters:
        sockets.append(cluster.transport_socket)
        sockets.extend(match.transport_socket for match in cluster.transport_socket_matches)
    for listener in static.listeners:
        sockets.extend(chain.transport_socket for chain in listener.filter_chains)
        if listener.HasField("default_filter_chain"):
            sockets.append(listener.default_filter_chain.transport_socket)
    return sockets


def _stand_in_certificate() -> tuple[bytes, bytes]:
    """A fresh EC key and a self-signed certificate for it (PEM), for validation only."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshctl-validate")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("meshctl-validate")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _inline_routes(listener: listener_pb2.Listener, routes: dict[str, object]) -> None:
    from meshctl.generate.filters import HCM

    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    for chain in chains:
        for item in chain.filters:
            if item.name != HCM:
                continue
            manager = hcm_pb2.HttpConnectionManager()
            item.typed_config.Unpack(manager)
            if not manager.HasField("rds"):
                continue
            name = manager.rds.route_config_name
            route = routes.get(name)
            manager.ClearField("rds")
            manager.route_config.name = name
            if route is not None:
                manager.route_config.CopyFrom(route)
            item.typed_config.CopyFrom(typed(manager))
