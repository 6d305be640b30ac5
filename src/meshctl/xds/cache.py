"""The snapshot cache: the accepted generation of config and the streams watching it.

Every accepted change is translated once into a `Generation`; each stream watching the cache is
then woken, asks the generation for its own node's resources and pushes only the differences
(go-control-plane's snapshot cache and its watches, with snapshots made on demand per node).
This is the one place that knows all streams, so the debug answers (syncz, config_dump, CSDS,
configz) are built here too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from envoy.service.discovery.v3 import discovery_pb2

from meshctl.errors import GenerationError, MeshctlError, UnknownProxyError
from meshctl.resources import CONFIG_DUMP, SYNCZ, short_name, to_config_dump
from meshctl.xds import status
from meshctl.xds.encoding import Encoder
from meshctl.xds.generation import Generation, Translate, as_failure
from meshctl.xds.heap import Heap
from meshctl.xds.identity import NodeIdentity
from meshctl.xds.inbox import Inbox
from meshctl.xds.metrics import Metrics, kind_label
from meshctl.xds.state import Shared
from meshctl.xds.stream import Push, Stream

if TYPE_CHECKING:
    from envoy.service.status.v3 import csds_pb2

    from meshctl.config.resource import Resource
    from meshctl.sources.base import Rejection, SourceUpdate

__all__ = ["CHANGED", "CLOSE", "NotReadyError", "SnapshotCache"]

log = logging.getLogger("meshctl.xds")

# Queue events besides requests: a new config to push, and the end of the stream.
CHANGED = object()
CLOSE = object()


class NotReadyError(MeshctlError):
    """No configuration has been accepted yet."""


class SnapshotCache:
    """The accepted generation plus the registry of streams it is pushed to. `nodes` tells
    nodes apart (see identity.py): status answers and debug queries know proxies by its keys."""

    def __init__(self, nodes: NodeIdentity) -> None:
        self.nodes = nodes
        self.generation: Generation | None = None
        self.change_started = time.monotonic()
        self.accepted = 0
        self.resources: tuple[Resource, ...] = ()
        self.rejected: tuple[Rejection, ...] = ()
        self.translate_error = ""
        self.metrics = Metrics()
        self.control_plane = status.control_plane_identifier()
        self.encoder = Encoder()
        self.shared = Shared()
        self.heap = Heap()
        self.streams: dict[Stream, Inbox[Any]] = {}
        self._accepted_key: tuple[tuple[str, ...], ...] | None = None
        self._debug_nonces = 0
        self._connected = {"sotw": 0, "delta": 0}

    @property
    def ready(self) -> bool:
        return self.generation is not None

    def apply(self, update: SourceUpdate, translate: Translate) -> None:
        """Take a source update: report refused files, translate a changed resource set once,
        and wake every stream. A translation failure keeps the last good config serving."""
        self._note_rejections(update.rejected)
        key = tuple(sorted((r.kind, r.namespace, r.name, r.revision) for r in update.resources))
        if key == self._accepted_key:
            return
        self.heap.active()  # translating is work too: no collection in the middle of it (heap.py)
        started = time.monotonic()
        try:
            generation = translate(update.resources)
        except MeshctlError as exc:
            self._translate_failed(str(exc))
            return
        except Exception as exc:  # a translator bug must not take the last good config down
            log.exception("translation failed", extra={"resources": len(update.resources)})
            self._translate_failed(f"{type(exc).__name__}: {exc}")
            return
        self.translate_error = ""
        self._accepted_key = key
        self.resources = update.resources
        self.publish(generation, started)
        log.info(
            "config accepted",
            extra={"version": generation.version, "resources": len(update.resources),
                   "rejected_files": len(update.rejected), "translate_ms": round((time.monotonic() - started) * 1e3, 2)},
        )

    def publish(self, generation: Generation, started: float | None = None) -> None:
        """Serve `generation` from now on and wake every stream: the end of `apply`, and the
        whole of an update made by other means than translating config (the agent's secrets).
        `started` is when the change began, for the push-time metrics."""
        self.generation = generation
        self.change_started = time.monotonic() if started is None else started
        self.accepted += 1
        self.encoder.next_generation()
        self.shared.next_generation()
        self.metrics.generations.inc()
        self.heap.active()
        self.notify()

    def _translate_failed(self, message: str) -> None:
        self.translate_error = message
        self.metrics.translate_errors.inc()
        log.error("config refused by the translator; the last good config keeps serving: %s", message)

    def _note_rejections(self, rejected: Sequence[Rejection]) -> None:
        """Keep what the source refuses for configz and metrics; the source logs it, since only
        it knows why a refusal ended (fixed, or the file removed)."""
        self.rejected = tuple(rejected)
        self.metrics.config_errors.set(len(rejected))
        self.metrics.rejected.values.clear()
        for rejection in rejected:
            self.metrics.rejected.set(len(rejection.problems), rejection.file)

    def notify(self) -> None:
        """Wake each proxy stream once; a stream already woken will see the newest config anyway."""
        for stream, queue in self.streams.items():
            if stream.watches and not stream.change_queued:
                stream.change_queued = True
                queue.put(CHANGED)

    def register(self, stream: Stream, queue: Inbox[Any]) -> None:
        self.streams[stream] = queue
        self.heap.active()
        self._count(stream, 1)
        _comings_and_goings(stream)("connected", extra={"node": stream.node.id, "mode": stream.mode, "peer": stream.peer})

    def unregister(self, stream: Stream) -> None:
        if self.streams.pop(stream, None) is not None:
            self._count(stream, -1)
            _comings_and_goings(stream)("disconnected", extra={"node": stream.node.id, "mode": stream.mode})
            if stream.failure is not None:
                self.metrics.failing_proxies.inc(amount=-1)

    def close_all(self) -> None:
        """Ask every stream to end cleanly (used at shutdown, before the gRPC server stops)."""
        self.heap.close()
        for queue in self.streams.values():
            queue.put(CLOSE)

    def _count(self, stream: Stream, change: int) -> None:
        """The connected-proxies gauge, kept by count: walking every stream at each connect and
        disconnect cost a thousand proxies' reconnection a million steps."""
        if not stream.debug:
            self._connected[stream.mode] += change
        for mode, count in self._connected.items():
            self.metrics.connected.set(count, mode)

    def record(self, push: Push, mode: str) -> None:
        """Metrics of a response just written."""
        self.heap.active()
        kind = kind_label(push.type_url)
        self.metrics.pushes.inc(kind)
        self.metrics.push_bytes.inc(kind, mode, amount=len(push.payload))
        self.metrics.push_time.observe(time.monotonic() - push.started, kind)

    def proxies(self) -> list[Stream]:
        return status.proxies(self.streams)

    def client_configs(self) -> list[csds_pb2.ClientConfig]:
        return [status.client_config(stream) for stream in self.proxies()]

    def config_dump(self, proxy_id: str) -> Any:
        """What serve would send the proxy known as `proxy_id` (`POD.NS`) now, as an Envoy admin
        ConfigDump; a proxy not connected is asked about through the node identity's stand-in.

        Raises UnknownProxyError, naming the connected proxies, when the proxy is neither
        connected nor known to the configuration: a config made up for it would be compared
        with a real Envoy's and show nothing but false differences.
        """
        if self.generation is None:
            raise NotReadyError("no configuration has been accepted yet")
        proxies = self.proxies()
        connected = next((s for s in proxies if s.proxy_id == proxy_id), None)
        node = connected.node if connected is not None else self.nodes.stand_in(proxy_id)
        try:
            resources = self.generation.resources_for(node)
        except UnknownProxyError:
            if connected is not None:
                raise
            names = ", ".join(stream.proxy_id for stream in proxies)
            raise UnknownProxyError(
                f"proxy {proxy_id} is neither connected nor in the configuration; "
                + (f"connected proxies: {names}" if names else "no proxy is connected")
            ) from None
        except MeshctlError:
            raise
        except Exception as exc:
            raise as_failure(exc) from exc
        return to_config_dump(resources, self.generation.version)

    def debug_response(self, request: discovery_pb2.DiscoveryRequest) -> discovery_pb2.DiscoveryResponse | None:
        """Answers to istiod's debug type URLs, shaped as istioctl expects them. A config_dump
        question about an unknown proxy raises UnknownProxyError (NotReadyError before any
        config): the transport turns it into the call's status, as istiod fails the request."""
        self._debug_nonces += 1
        response = discovery_pb2.DiscoveryResponse(
            type_url=request.type_url, nonce=f"debug-{self._debug_nonces}",
            version_info=self.generation.version if self.generation else "",
        )
        response.control_plane.CopyFrom(self.control_plane)
        if request.type_url == SYNCZ:
            response.resources.extend(status.pack_all(self.client_configs()))
        elif request.type_url == CONFIG_DUMP:
            if len(request.resource_names) != 1:
                log.debug("config_dump wants exactly one proxy id", extra={"names": list(request.resource_names)})
                return response
            try:
                dump = self.config_dump(request.resource_names[0])
            except (UnknownProxyError, NotReadyError, GenerationError) as exc:
                log.debug("config_dump: %s", exc, extra={"proxy": request.resource_names[0]})
                raise
            response.resources.extend(dump.configs)
        else:
            log.info("unknown debug type", extra={"type": request.type_url})
        return response

    def configz(self) -> dict[str, Any]:
        """Loaded resources and refused files, for `/debug/configz`."""
        return {
            "version": self.generation.version if self.generation else "",
            "generation": self.accepted,
            "translateError": self.translate_error,
            "resources": [
                {"kind": r.kind, "apiVersion": r.api_version, "namespace": r.namespace, "name": r.name,
                 "revision": r.revision, "origin": str(r.origin)}
                for r in self.resources
            ],
            "rejected": [{"file": r.file, "problems": list(r.problems)} for r in self.rejected],
            "rejectedByProxies": [
                {"proxy": s.proxy_id, "type": short_name(w.type_url), "error": w.error,
                 "resources": [item.name for item in w.rejected], "origins": list(w.origins)}
                for s in self.proxies() for w in s.watches.values() if w.error
            ],
            "generationErrors": [
                {"proxy": s.proxy_id, "version": s.failed_version, "error": str(s.failure),
                 "resources": list(s.failure.culprits)}
                for s in self.proxies() if s.failure is not None
            ],
        }


def _comings_and_goings(stream: Stream) -> Callable[..., None]:
    """How a stream's connect and disconnect are logged: proxies at info level; debug clients
    (`proxy-status` opens a stream per question) at debug level, so they do not drown them."""
    return log.debug if stream.debug else log.info
