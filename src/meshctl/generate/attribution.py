"""Which input objects a generation failure happened on, and which an Envoy resource came from.

A generator that fails on a value (an overflow, a translator bug) raises from deep inside code
that knows nothing of files. The objects it was translating are still on the stack: the innermost
frame that holds a config resource (or an Istio view of one) is the one that was translating it.
That frame's resources are reported, all of them, as the objects "being translated": a frame
may hold two (a VirtualService and the DestinationRule its route reads), and naming both is
honest where guessing one is not. Nothing is reported when no frame holds one.

A resource a proxy rejects (NACK) is traced back the way istioctl does it: through the `istio`
metadata the translation puts on clusters and routes.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format

from meshctl.config.resource import Resource
from meshctl.errors import GenerationError
from meshctl.resources import CLUSTER, ENDPOINT, ROUTE, Packed

__all__ = ["attributed", "culprits", "sources"]


def _resources_in(value: object) -> Iterator[Resource]:
    """A resource, or the resource(s) behind a view of one (`.resource`, `.resources`)."""
    if isinstance(value, Resource):
        yield value
        return
    single = getattr(value, "resource", None)
    if isinstance(single, Resource):
        yield single
    several = getattr(value, "resources", None)
    if isinstance(several, tuple):
        yield from (item for item in several if isinstance(item, Resource))


def culprits(exc: BaseException) -> list[Resource]:
    """The resources held by the innermost frame of `exc`'s traceback that holds any."""
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    for frame in reversed(frames):
        found: dict[int, Resource] = {}
        for value in frame.f_locals.values():
            for resource in _resources_in(value):
                found.setdefault(id(resource), resource)
        if found:
            return sorted(found.values(), key=lambda r: (r.origin.file, r.origin.line, r.kind, r.namespace, r.name))
    return []


def attributed(exc: Exception) -> GenerationError:
    """`exc` as a GenerationError naming the objects being translated when it was raised."""
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return GenerationError(message, [f"{r.where()}: {r.ref()}" for r in culprits(exc)])


def _config_key(path: str) -> tuple[str, str, str] | None:
    """(kind in lower case without dashes, namespace, name) of an `istio.config` metadata path
    (`/apis/networking.istio.io/v1/namespaces/NS/destination-rule/NAME`, see model.istio.config_path)."""
    parts = path.strip("/").split("/")
    if len(parts) != 7 or parts[0] != "apis" or parts[3] != "namespaces":
        return None
    return parts[5].replace("-", ""), parts[4], parts[6]


def _istio_metadata(metadata: Any) -> Mapping[str, Any]:
    fields = metadata.filter_metadata.get("istio")
    return json_format.MessageToDict(fields) if fields is not None else {}


def sources(resources: Sequence[Resource], packed: Packed) -> list[Resource]:
    """The input objects an Envoy resource was made from, as the `istio` metadata Istio puts on
    it tells: a cluster names its services and its DestinationRule (`config`), every route its
    VirtualService; an assignment is its cluster's service. Other resources name none."""
    wanted: list[tuple[str, str, str]] = []
    if packed.type_url == CLUSTER:
        cluster = cluster_pb2.Cluster.FromString(packed.value)
        fields = _istio_metadata(cluster.metadata)
        for service in fields.get("services", []):
            for kind in ("service", "serviceentry"):
                wanted.append((kind, service.get("namespace", ""), service.get("name", "")))
        wanted.append(_config_key(str(fields.get("config", ""))) or ("", "", ""))
    elif packed.type_url == ROUTE:
        config = route_pb2.RouteConfiguration.FromString(packed.value)
        for host in config.virtual_hosts:
            for route in host.routes:
                wanted.append(_config_key(str(_istio_metadata(route.metadata).get("config", ""))) or ("", "", ""))
    elif packed.type_url == ENDPOINT:
        host = packed.name.rsplit("|", 1)[-1].split(".")
        if len(host) > 2 and host[2] == "svc":
            wanted.append(("service", host[1], host[0]))
    keys = set(wanted)
    return [r for r in resources if (r.kind.lower(), r.namespace, r.name) in keys]
