"""Envoy's core messages as Istio repeats them in every resource: addresses, the ADS config
source, SDS secret configs, `istio` metadata.

The shared ones are built once here and copied in, which keeps the generators short and avoids
rebuilding identical messages thousands of times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, grpc_service_pb2

from meshctl.generate.protobuf import struct_value
from meshctl.model.secrets import AGENT_CLUSTER, ROOT_CERTIFICATE, WORKLOAD_CERTIFICATE

__all__ = ["ADS", "ads_source", "credential_secret_config", "istio_metadata", "sds_secret_config", "set_address"]


def set_address(target: address_pb2.Address, host: str, port: int) -> None:
    """Point `target` at HOST:PORT, or at the pipe `unix://PATH` names: Istio accepts Unix
    socket endpoints, and Envoy only takes those as a pipe (an IP parse of them fails)."""
    if host.startswith("unix://"):
        target.pipe.path = host[len("unix://"):]
        return
    target.socket_address.address = host
    target.socket_address.port_value = port


def ads_source() -> config_source_pb2.ConfigSource:
    """`{ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}`: how Istio points at ADS."""
    source = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    source.ads.SetInParent()
    source.initial_fetch_timeout.SetInParent()
    return source


ADS = ads_source()


def sds_secret_config(name: str) -> Any:
    """An SDS secret fetched from the node agent's `sds-grpc` cluster (istio-agent, or meshctl agent).

    Only the workload certificate and the roots wait without a timeout (`initial_fetch_timeout:
    0s`): the agent always has them. Certificates read from files may not exist, and must not
    hold a listener or cluster back forever (Istio's ConstructSdsSecretConfig).
    """
    from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

    config = secret_pb2.SdsSecretConfig(name=name)
    source = config.sds_config
    source.resource_api_version = config_source_pb2.V3
    if name in (WORKLOAD_CERTIFICATE, ROOT_CERTIFICATE):
        source.initial_fetch_timeout.SetInParent()
    api = source.api_config_source
    api.api_type = config_source_pb2.ApiConfigSource.GRPC
    api.set_node_on_first_message_only = True
    api.transport_api_version = config_source_pb2.V3
    api.grpc_services.append(grpc_service_pb2.GrpcService(envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=AGENT_CLUSTER)))
    return config


def credential_secret_config(name: str) -> Any:
    """An SDS secret fetched over ADS from the control plane: a `credentialName` certificate
    (`kubernetes://NAME`). No `initial_fetch_timeout`, unlike ADS's other resources: the
    Secret may not exist, and that must not block the whole listener (Istio's SDSAdsConfig)."""
    from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

    config = secret_pb2.SdsSecretConfig(name=name)
    config.sds_config.ads.SetInParent()
    config.sds_config.resource_api_version = config_source_pb2.V3
    return config


def istio_metadata(metadata: base_pb2.Metadata, fields: Mapping[str, Any]) -> None:
    """Add fields under `filter_metadata.istio`, where istioctl and telemetry look for them."""
    istio = metadata.filter_metadata["istio"]
    for key, value in fields.items():
        istio.fields[key].CopyFrom(struct_value(value))
