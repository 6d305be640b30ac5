"""Small constructors shared by every generator: durations, Any packing, config sources, metadata.

Istio repeats a handful of sub-messages in every resource (the ADS config source, the SDS secret
configs, the metadata-exchange filter). They are built once here and copied in, which keeps the
generators short and avoids rebuilding identical messages thousands of times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, grpc_service_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2
from google.protobuf.message import Message
from udpa.type.v1 import typed_struct_pb2

from meshctl.config.values import parse_duration, split_nanos

TYPE_PREFIX = "type.googleapis.com/"
MAX_UINT32 = 4294967295
SDS_CLUSTER = "sds-grpc"
SDS_DEFAULT = "default"
SDS_ROOT = "ROOTCA"
BLACKHOLE = "BlackHoleCluster"
PASSTHROUGH = "PassthroughCluster"
INBOUND_PASSTHROUGH = "InboundPassthroughCluster"


def typed(message: Message) -> any_pb2.Any:
    """Pack a typed_config deterministically (stable bytes give stable resource versions)."""
    return any_pb2.Any(
        type_url=TYPE_PREFIX + message.DESCRIPTOR.full_name,
        value=message.SerializeToString(deterministic=True),
    )


def typed_struct(type_url: str, fields: Mapping[str, Any]) -> any_pb2.Any:
    """An Istio-private extension config, carried as a TypedStruct (istio-proxy only)."""
    holder = typed_struct_pb2.TypedStruct(type_url=type_url)
    holder.value.update(dict(fields))
    return typed(holder)


def set_address(target: address_pb2.Address, host: str, port: int) -> None:
    """Point `target` at HOST:PORT, or at the pipe `unix://PATH` names: Istio accepts Unix
    socket endpoints, and Envoy only takes those as a pipe (an IP parse of them fails)."""
    if host.startswith("unix://"):
        target.pipe.path = host[len("unix://"):]
        return
    target.socket_address.address = host
    target.socket_address.port_value = port


def duration(seconds: float = 0, nanos: int | None = None) -> duration_pb2.Duration:
    if nanos is None:
        whole = int(seconds)
        return duration_pb2.Duration(seconds=whole, nanos=int(round((seconds - whole) * 1e9)))
    sec, rest = split_nanos(nanos)
    return duration_pb2.Duration(seconds=sec, nanos=rest)


def parsed_duration(text: str) -> duration_pb2.Duration:
    """A validated Istio duration string as a protobuf Duration."""
    nanos = parse_duration(text)
    return duration(nanos=nanos or 0)


def set_nanos(target: duration_pb2.Duration, nanos: int) -> None:
    """Set a protobuf Duration from a view's nanoseconds."""
    target.seconds, target.nanos = split_nanos(nanos)


def set_duration(target: duration_pb2.Duration, text: str) -> None:
    sec, rest = split_nanos(parse_duration(text) or 0)
    target.seconds = sec
    target.nanos = rest


def ads_source() -> config_source_pb2.ConfigSource:
    """`{ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}`: how Istio points at ADS."""
    source = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    source.ads.SetInParent()
    source.initial_fetch_timeout.SetInParent()
    return source


ADS = ads_source()


def sds_secret_config(name: str) -> Any:
    """An SDS secret fetched from the `sds-grpc` cluster (the istio-agent, or meshctl serve)."""
    from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

    config = secret_pb2.SdsSecretConfig(name=name)
    source = config.sds_config
    source.resource_api_version = config_source_pb2.V3
    source.initial_fetch_timeout.SetInParent()
    api = source.api_config_source
    api.api_type = config_source_pb2.ApiConfigSource.GRPC
    api.set_node_on_first_message_only = True
    api.transport_api_version = config_source_pb2.V3
    api.grpc_services.append(grpc_service_pb2.GrpcService(envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=SDS_CLUSTER)))
    return config


def struct_value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, (int, float)):
        out.number_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            out.struct_value.fields[key].CopyFrom(struct_value(item))
    elif isinstance(value, Iterable):
        for item in value:
            out.list_value.values.append(struct_value(item))
    else:
        out.null_value = struct_pb2.NULL_VALUE
    return out


def istio_metadata(metadata: base_pb2.Metadata, fields: Mapping[str, Any]) -> None:
    """Add fields under `filter_metadata.istio`, where istioctl and telemetry look for them."""
    istio = metadata.filter_metadata["istio"]
    for key, value in fields.items():
        istio.fields[key].CopyFrom(struct_value(value))
