"""Expected SDS secret configs, spelled out with xds-protos classes, for the TLS constructor
tables of sidecars and gateways alike."""

from __future__ import annotations

from envoy.config.core.v3 import config_source_pb2, grpc_service_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import duration_pb2


def from_agent(name: str) -> secret_pb2.SdsSecretConfig:
    """A secret served by the agent's SDS (`sds-grpc`), as sidecars and gateways fetch their own
    certificates: only `default` and `ROOTCA` wait without a timeout (Istio's ConstructSdsSecretConfig)."""
    waits = duration_pb2.Duration() if name in ("default", "ROOTCA") else None
    return secret_pb2.SdsSecretConfig(name=name, sds_config=config_source_pb2.ConfigSource(
        resource_api_version=config_source_pb2.V3, initial_fetch_timeout=waits,
        api_config_source=config_source_pb2.ApiConfigSource(
            api_type=config_source_pb2.ApiConfigSource.GRPC, set_node_on_first_message_only=True,
            transport_api_version=config_source_pb2.V3,
            grpc_services=[grpc_service_pb2.GrpcService(envoy_grpc={"cluster_name": "sds-grpc"})])))


def over_ads(name: str) -> secret_pb2.SdsSecretConfig:
    """A secret served over ADS by the control plane (credentialName): no initial fetch timeout,
    so a missing Secret does not hold the listener or cluster back (Istio's SDSAdsConfig)."""
    return secret_pb2.SdsSecretConfig(name=name, sds_config=config_source_pb2.ConfigSource(
        ads={}, resource_api_version=config_source_pb2.V3))


def exact(*values: str) -> list[string_pb2.StringMatcher]:
    """Matchers of exact strings (SANs, SNI names)."""
    return [string_pb2.StringMatcher(exact=value) for value in values]
