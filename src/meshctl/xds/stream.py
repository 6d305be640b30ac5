"""The xDS protocol of one ADS stream, in its two variants, free of gRPC.

A `Stream` turns two kinds of events (a request from the proxy, a new configuration) into the
responses to write. SotW and Delta share everything except how a request changes the
subscription and how a response is shaped. Rules implemented here, with the reason for each:

- Push order CDS → EDS → LDS → RDS, so Envoy never receives a reference to something it lacks.
- At most one unacknowledged response per type (Istio's backpressure); changes that arrive
  meanwhile are coalesced into one push, computed afresh when the ACK or NACK arrives.
- A NACK is recognised only by `error_detail`; its message is kept for syncz; the same bytes are
  not pushed again (Envoy keeps its last good config; the next change of the resource is pushed).
- SotW ignores requests carrying a stale nonce; Delta still applies their subscription changes.
- After a Cluster changes, its ClusterLoadAssignment is pushed again without waiting to be asked:
  an updated cluster only leaves warming when a new EDS response arrives.
- Versions are content hashes, so a proxy reconnecting to a restarted server with the versions
  it holds gets no clusters or listeners resent; endpoints and routes are answered in full, as
  nothing in the versions tells whether a re-created cluster or listener is waiting for them
  (see Watch.resumable).
- A proxy whose config fails to generate keeps what it was sent and its stream; the failure is
  reported with the objects it happened on, and the next config is tried (never the same twice).
- A NACK is pinned on the resources the rejected push brought, and on the input they came from.
- What a request may ask is bounded (limits.py): beyond it the stream is refused, not served.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from envoy.config.core.v3 import base_pb2 as core_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from google.protobuf.message import Message

from meshctl.errors import GenerationError, MeshctlError, UnknownProxyError
from meshctl.resources import CLUSTER, DEBUG_PREFIX, ENDPOINT, FULL_STATE, Packed, ProxyResources, push_rank, short_name
from meshctl.xds.generation import as_failure
from meshctl.xds.limits import MAX_UNDEFINED_ANSWERED, MAX_WATCHES, Names, RequestRefused, check_name
from meshctl.xds.metrics import kind_label
from meshctl.xds.state import NO_NAMES, Shared, Watch

if TYPE_CHECKING:
    from meshctl.xds.encoding import Encoder
    from meshctl.xds.generation import Generation
    from meshctl.xds.identity import Identity, NodeIdentity
    from meshctl.xds.metrics import Metrics

__all__ = ["DeltaStream", "Host", "Push", "RefusedNodeError", "SotwStream", "Stream"]

log = logging.getLogger("meshctl.xds")
_NOTHING: Mapping[str, Packed] = {}


class RefusedNodeError(MeshctlError):
    """A node whose id breaks the naming rules asked for resources."""


class Host(Protocol):
    """What a stream needs from the server: the current generation and a few shared services."""

    generation: Generation | None
    change_started: float
    nodes: NodeIdentity
    metrics: Metrics
    control_plane: core_pb2.ControlPlane
    encoder: Encoder
    shared: Shared

    def debug_response(self, request: discovery_pb2.DiscoveryRequest) -> discovery_pb2.DiscoveryResponse | None: ...


@dataclass(frozen=True, slots=True)
class Push:
    """A response to write (serialized), with what the metrics need to know about it."""

    type_url: str
    payload: bytes
    started: float


class Stream:
    """One ADS stream: the proxy's identity, its watches, and the resources it should hold."""

    mode = ""

    def __init__(self, cache: Host, node: core_pb2.Node, peer: str = "") -> None:
        self.cache = cache
        self.node = node
        self.peer = peer
        self.identity: Identity = cache.nodes.identify(node)
        self.debug = not self.identity.proxy
        self.identified = False
        self.watches: dict[str, Watch] = {}  # in push order
        self.resources: ProxyResources | None = None
        self.generation_version: str | None = None
        self.unknown = ""
        self.failure: GenerationError | None = None
        self.failed_version = ""
        self.connected_at = time.time()
        self.change_queued = False
        self._nonces = itertools.count(1)
        self._announced = False

    @property
    def proxy_id(self) -> str:
        return self.identity.key

    def identify(self) -> None:
        """Hold the node to the naming rules on first need: debug clients asking only debug
        types may use any id."""
        if self.identity.refusal:
            raise RefusedNodeError(self.identity.refusal)
        self.identified = True

    def refresh(self) -> None:
        """Take this proxy's resources from the current config. An unknown proxy keeps whatever it
        was sent before: a workload that vanished from the registry is not emptied by accident."""
        generation = self.cache.generation
        if generation is None or not self.identified or generation.version == self.generation_version:
            return
        self.generation_version = generation.version
        try:
            self.resources = generation.resources_for(self.node)
        except UnknownProxyError as exc:
            if self.unknown != str(exc):
                log.warning("unknown proxy: %s", exc, extra={"proxy": self.proxy_id, "config": generation.version})
            self.unknown = str(exc)
            return
        except Exception as exc:  # this proxy's failure alone: it keeps its last good config
            self._failed(generation.version, as_failure(exc), exc)
            return
        self.unknown = ""
        if self.failure is not None:
            log.info("generation succeeds again", extra={"proxy": self.proxy_id, "config": generation.version})
            self.failure = None
            self.cache.metrics.failing_proxies.inc(amount=-1)

    def _failed(self, version: str, failure: GenerationError, exc: Exception) -> None:
        """Generation failed for this proxy: report it (log, metrics, configz through the cache)
        and keep what it was sent; only the next config is tried again, never this one."""
        if self.failure is None:
            self.cache.metrics.failing_proxies.inc()
        self.failure = failure
        self.failed_version = version
        self.cache.metrics.generation_errors.inc()
        log.error(
            "generation failed, the proxy keeps its last good config: %s", failure,
            extra={"proxy": self.proxy_id, "config": version, "resources": "; ".join(failure.culprits) or "unknown"},
        )
        if exc is not failure or exc.__cause__ is not None:  # a bug somewhere: where, for whoever debugs it
            log.debug("generation failure traceback", exc_info=exc, extra={"proxy": self.proxy_id})

    def on_config(self) -> list[Push]:
        """A new configuration generation: push, in order, every type whose resources changed."""
        self.change_queued = False
        if not self.identified:
            return []
        self.refresh()
        started = self.cache.change_started
        out: list[Push] = []
        for watch in self.watches.values():  # in push order (see _watch)
            out.extend(self.push(watch, started))
        return out

    def _watch(self, type_url: str) -> tuple[Watch, bool]:
        watch = self.watches.get(type_url)
        if watch is not None:
            return watch, False
        check_name(type_url, "a type URL")
        if len(self.watches) >= MAX_WATCHES:
            raise RequestRefused(f"a stream may subscribe to at most {MAX_WATCHES} resource types")
        self.watches[type_url] = watch = Watch(type_url)
        self.watches = {t: self.watches[t] for t in sorted(self.watches, key=push_rank)}
        self.refresh()
        return watch, True

    def _reply(self, watch: Watch, version: str, status: status_pb2.Status | None) -> None:
        """Record an ACK or NACK of the latest push on this watch. A NACK is pinned on the
        resources of the push Envoy's message names (all it brought, when it names none) and on
        the input objects they were made from."""
        if status is None:
            elapsed = time.monotonic() - watch.push_started
            self.cache.metrics.convergence.observe(elapsed)
            if log.isEnabledFor(logging.DEBUG):  # per proxy and change: not even the fields unless logged
                log.debug("ACK", extra={"proxy": self.proxy_id, "type": short_name(watch.type_url), "nonce": watch.nonce_sent,
                                        "version": version, "convergence_ms": round(elapsed * 1e3, 3)})
            watch.record_reply(version, "")
            return
        kind = short_name(watch.type_url)
        error = status.message or f"rejected (code {status.code})"
        self.cache.metrics.nacks.inc(kind_label(watch.type_url))
        watch.record_reply(version, error)
        watch.origins = self._origins(watch.rejected)
        log.warning("NACK: %s", error, extra={
            "proxy": self.proxy_id, "type": kind, "nonce": watch.nonce_sent,
            "resources": ", ".join(item.name for item in watch.rejected), "config": "; ".join(watch.origins) or "unknown",
        })

    def _origins(self, rejected: tuple[Packed, ...]) -> tuple[str, ...]:
        """The input objects the rejected resources were made from, as the config tells."""
        generation = self.cache.generation
        if generation is None:
            return ()
        found: dict[str, None] = {}
        for item in rejected:
            try:
                found.update(dict.fromkeys(generation.origins(item)))
            except Exception:  # an explanation must never cost the stream
                log.debug("origins failed", exc_info=True, extra={"resource": item.name})
        return tuple(found)

    def push(self, watch: Watch, started: float) -> list[Push]:
        """The response this watch needs now, if any, plus the EDS a changed cluster needs.

        The translator hands a proxy whose resources of a type did not change the very same
        mapping again (see GenerationCache.pack_segments): such a watch, with nothing asked
        meanwhile, is passed over without comparing anything. That is what keeps a change's
        cost proportional to the proxies and types it touches."""
        if self.resources is None or not (watch.wildcard or watch.names):
            return []
        available = self.resources.get(watch.type_url, _NOTHING)
        if available is watch.basis and not (watch.requested or watch.answer_due or watch.resumed):
            watch.stale = False
            return []
        if watch.pending:
            watch.stale = True
            return []
        watch.stale = False
        shared = self.cache.shared
        desired = watch.desired(available, shared)
        self._resume(watch, desired)
        updated, removed = watch.changes(desired, shared)
        absent = list(itertools.islice((name for name in watch.requested if name not in desired), MAX_UNDEFINED_ANSWERED))
        if not (updated or removed or absent or watch.answer_due):
            watch.basis = available
            return []
        nonce = str(next(self._nonces))
        payload, version = self.build(watch, desired, updated, removed + absent, nonce, self._announcement())
        watch.blame(updated, desired)
        watch.record_push(nonce, shared.versions(desired), version, time.time(), started)
        watch.basis = available
        if log.isEnabledFor(logging.DEBUG):
            log.debug("push", extra={"proxy": self.proxy_id, "type": short_name(watch.type_url), "nonce": nonce,
                                     "updated": len(updated), "removed": len(removed) + len(absent)})
        out = [Push(watch.type_url, payload, started)]
        endpoints = self.watches.get(ENDPOINT)
        if watch.type_url == CLUSTER and endpoints is not None and updated:
            endpoints.forget(p.name for p in updated if p.name in endpoints.sent)
            endpoints.requested |= {p.name for p in updated if endpoints.subscribed(p.name)}
            out.extend(self.push(endpoints, started))
        return out

    def _announcement(self) -> bytes:
        """The control plane's identity (istioctl shows it), in the first response of a stream."""
        if self._announced:
            return b""
        self._announced = True
        return self.cache.control_plane.SerializeToString()

    def _answer(self, watch: Watch, started: float, replied: bool) -> list[Push]:
        """The push a request calls for. A plain ACK or NACK of the latest push (no new names,
        nothing held back meanwhile) calls for none, and skips diffing the whole type again."""
        if replied and not (watch.stale or watch.answer_due or watch.requested):
            return []
        return self.push(watch, started)

    def _resume(self, watch: Watch, desired: Mapping[str, Packed]) -> None:
        """Subclasses recognise a proxy that reconnected holding current versions."""

    def build(
        self, watch: Watch, desired: Mapping[str, Packed], updated: list[Packed], removed: list[str], nonce: str,
        control_plane: bytes,
    ) -> tuple[bytes, str]:
        """The serialized response and the version it carries."""
        raise NotImplementedError

    def on_request(self, request: Message, names: Names | None = None) -> list[Push]:
        """The responses a request calls for. `names` are its names as limits.read made them (off
        the event loop, for a large request); read here when not given."""
        raise NotImplementedError


class SotwStream(Stream):
    """State of the World: every request carries the full subscription of its type."""

    mode = "sotw"

    def on_request(self, request: discovery_pb2.DiscoveryRequest, names: Names | None = None) -> list[Push]:
        started = time.monotonic()
        if request.type_url.startswith(DEBUG_PREFIX):
            if request.response_nonce:
                return []
            answer = self.cache.debug_response(request)
            return [Push(request.type_url, answer.SerializeToString(), started)] if answer is not None else []
        self.identify()
        watch, _ = self._watch(request.type_url)
        nonce = request.response_nonce
        if nonce and nonce != watch.nonce_sent:
            log.debug("stale nonce ignored", extra={"proxy": self.proxy_id, "type": short_name(watch.type_url),
                                                    "nonce": nonce, "latest": watch.nonce_sent})
            return []
        replied = bool(nonce) and watch.pending
        if replied:
            self._reply(watch, request.version_info, request.error_detail if request.HasField("error_detail") else None)
        elif not nonce:
            watch.answer_due = True
            watch.resumed = bool(request.version_info) and watch.resumable
            watch.client_version = request.version_info
        watch.set_names((names or Names.of(request)).subscribe)
        return self._answer(watch, started, replied)

    def _resume(self, watch: Watch, desired: Mapping[str, Packed]) -> None:
        if not watch.resumed or watch.nonce_sent:
            return
        if self.cache.shared.version_of(desired) == watch.client_version:
            watch.sent = self.cache.shared.versions(desired)
            watch.sent_shared = True
            watch.requested = NO_NAMES
            watch.answer_due = False
            watch.in_sync_by_version = True
            watch.version_acked = watch.client_version
            watch.last_updated = time.time()
        watch.resumed = False

    def build(
        self, watch: Watch, desired: Mapping[str, Packed], updated: list[Packed], removed: list[str], nonce: str,
        control_plane: bytes,
    ) -> tuple[bytes, str]:
        version = self.cache.shared.version_of(desired)
        complete = watch.type_url in FULL_STATE
        chosen = list(desired.values()) if complete else updated
        payload = self.cache.encoder.sotw(watch.type_url, version, nonce, chosen, control_plane,
                                          complete=complete, share=not watch.placeholders)
        return payload, version


class DeltaStream(Stream):
    """Incremental: requests change the subscription; responses carry only what changed."""

    mode = "delta"

    def on_request(self, request: discovery_pb2.DeltaDiscoveryRequest, names: Names | None = None) -> list[Push]:
        started = time.monotonic()
        if request.type_url.startswith(DEBUG_PREFIX):
            return []
        self.identify()
        watch, new = self._watch(request.type_url)
        names = names or Names.of(request)
        nonce = request.response_nonce
        replied = bool(nonce) and nonce == watch.nonce_sent and watch.pending
        if replied:
            self._reply(watch, watch.version_sent, request.error_detail if request.HasField("error_detail") else None)
        if new and watch.type_url in FULL_STATE and not names.subscribe and not names.unsubscribe:
            watch.wildcard = True
            watch.answer_due = True
        watch.subscribe(names.subscribe)
        watch.unsubscribe(names.unsubscribe)
        if new and names.initial and watch.resumable:
            held = names.initial.keys() if watch.wildcard else names.initial.keys() & watch.names
            watch.own_sent().update((name, names.initial[name]) for name in held)
            watch.requested -= held
            watch.answer_due = False
            watch.resumed = True
        return self._answer(watch, started, replied)

    def _resume(self, watch: Watch, desired: Mapping[str, Packed]) -> None:
        if not watch.resumed or watch.nonce_sent:
            return
        updated, removed = watch.changes(desired)
        if not (updated or removed or watch.requested):
            watch.in_sync_by_version = True
            watch.last_updated = time.time()
        watch.resumed = False

    def build(
        self, watch: Watch, desired: Mapping[str, Packed], updated: list[Packed], removed: list[str], nonce: str,
        control_plane: bytes,
    ) -> tuple[bytes, str]:
        version = self.generation_version or ""
        payload = self.cache.encoder.delta(watch.type_url, version, nonce, updated, removed, control_plane,
                                           share=not watch.placeholders)
        return payload, version
