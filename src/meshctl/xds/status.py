"""What serve tells about itself and its proxies: the istiod-compatible debug answers.

istioctl and `meshctl proxy-status` ask a control plane the same questions over ADS, with the
pseudo type URLs `istio.io/debug/syncz` and `istio.io/debug/config_dump`; CSDS and the HTTP
debug server give the same answers. Everything is built here once, from the streams' state.
CSDS's messages are loaded when first asked for: the agent's SDS server, on the same cache, is
never asked, and listens ~2 ms sooner without them.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from envoy.config.core.v3 import base_pb2 as core_pb2
from google.protobuf import any_pb2, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from meshctl import __version__
from meshctl.xds.state import Watch
from meshctl.xds.stream import Stream

if TYPE_CHECKING:
    from envoy.service.status.v3 import csds_pb2

__all__ = ["client_config", "config_status", "control_plane_identifier", "pack_all", "proxies"]


def control_plane_identifier() -> core_pb2.ControlPlane:
    """The `control_plane.identifier` istiod sends, so istioctl's ISTIOD column shows this host."""
    info = {
        "version": __version__,
        "revision": "",
        "status": "Clean",
        "tag": __version__,
        "python_version": sys.version.split()[0],  # platform.python_version(), without its ~5 ms import
    }
    identifier = {"Component": "meshctl", "ID": socket.gethostname(), "Info": info}
    return core_pb2.ControlPlane(identifier=json.dumps(identifier, separators=(",", ":")))


def config_status(watch: Watch) -> int:
    """istiod's order: an unresolved NACK, nothing sent, the latest push acknowledged, or stale."""
    from envoy.service.status.v3 import csds_pb2

    if watch.error:
        return csds_pb2.ERROR
    if watch.in_sync_by_version:
        return csds_pb2.SYNCED
    if not watch.nonce_sent:
        return csds_pb2.NOT_SENT
    if watch.nonce_acked == watch.nonce_sent:
        return csds_pb2.SYNCED
    return csds_pb2.STALE


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def client_config(stream: Stream) -> csds_pb2.ClientConfig:
    """One proxy as istiod's syncz shows it: its id, the metadata its identity shows, a status
    per watched type."""
    from envoy.service.status.v3 import csds_pb2

    metadata = struct_pb2.Struct()
    metadata.update(dict(stream.identity.shown))
    config = csds_pb2.ClientConfig(node=core_pb2.Node(id=stream.proxy_id, metadata=metadata))
    for type_url in sorted(stream.watches):
        watch = stream.watches[type_url]
        entry = config.generic_xds_configs.add(
            type_url=type_url,
            config_status=config_status(watch),
            version_info=watch.version_acked or watch.version_sent,
        )
        if watch.last_updated:
            entry.last_updated.CopyFrom(_timestamp(watch.last_updated))
        if watch.error:
            entry.error_state.details = watch.error
            entry.error_state.version_info = watch.version_sent
            entry.error_state.last_update_attempt.CopyFrom(_timestamp(watch.last_updated))
    return config


def proxies(streams: Iterable[Stream]) -> list[Stream]:
    """Streams of real proxies (not debug clients), one per proxy id, sorted like istioctl's table."""
    chosen: dict[str, Stream] = {}
    for stream in streams:
        if stream.debug or not stream.identified:
            continue
        current = chosen.get(stream.proxy_id)
        if current is None or stream.connected_at >= current.connected_at:
            chosen[stream.proxy_id] = stream
    return [chosen[key] for key in sorted(chosen)]


def pack_all(messages: Iterable[Message]) -> list[any_pb2.Any]:
    out = []
    for message in messages:
        packed = any_pb2.Any()
        packed.Pack(message)
        out.append(packed)
    return out
