"""Writing the Gateway API status (model/gatewaystatus.py) to the cluster, as Istio's controller
does for GatewayClass `istio` (`istio.io/gateway-controller`), after making the built-in
classes the cluster lacks (kube/gatewayclasses.py) when given them to make.

Only objects read from the API server get a status (never those of a `--config-dir`), only
when the status computed differs from the one stored (so replicas that compute the same status
never write, and never fight), and only while `leading()` says this replica should (the
`--leader-lease` leader; every replica without one). Each write is a merge patch of the
status subresource, which changes nothing else and does not bump the object's generation.

`StatusReporting` taps a source's updates on their way to the server: the latest resources go
to a worker that writes in a thread (the client blocks), so a slow API server never delays a
push, and a failed write is tried again a little later.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

from meshctl.kube.resources import GATEWAY_API
from meshctl.kube.rest import MERGE_PATCH, ApiError, call_json
from meshctl.model.gatewayapi import KUBERNETES_GATEWAY
from meshctl.model.gatewaystatus import ObjectStatus, changed_statuses, gateway_api_statuses

if TYPE_CHECKING:
    from meshctl.config.resource import Resource
    from meshctl.kube.client import KubeClient
    from meshctl.kube.gatewayclasses import DefaultClasses
    from meshctl.sources.base import ConfigSource, SourceUpdate

__all__ = ["GatewayStatusWriter", "StatusReporting"]

log = logging.getLogger("meshctl.kube")

_PLURALS = {(KUBERNETES_GATEWAY if r.kind == "Gateway" else r.kind): r.plural for r in GATEWAY_API}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GatewayStatusWriter:
    """Writes the status of the Gateway API objects `origin` (the cluster) gave; an object it
    wrote is not written again until the watch brings a newer version of it (the write's own
    change, or another's), so the lag of the watch never makes it write twice."""

    def __init__(self, client: KubeClient, origin: str, domain: str, *,
                 leading: Callable[[], bool] = lambda: True, clock: Callable[[], str] = _now,
                 classes: DefaultClasses | None = None) -> None:
        self.client = client
        self.origin = origin
        self.domain = domain
        self.leading = leading
        self.clock = clock
        self.classes = classes
        self.writes = 0
        self._api = client.new_api_client()
        self._awaited: dict[tuple[str, str, str], str] = {}

    def write(self, resources: Sequence[Resource]) -> list[str]:
        """Write every status that changed; the objects written (`Kind ns/name`). ApiError
        when a write fails (the rest are still tried)."""
        if not self.leading():
            return []
        failed: ApiError | None = None
        if self.classes is not None:
            try:
                self.classes.ensure([r for r in resources if r.origin.file == self.origin])
            except ApiError as exc:
                failed = exc
                log.warning("GatewayClass not created: %s", exc)
        written: list[str] = []
        present = {r.key for r in resources}
        self._awaited = {key: revision for key, revision in self._awaited.items() if key in present}
        for status in changed_statuses(gateway_api_statuses(resources, self.domain, self.clock())):
            resource = status.resource
            if resource.origin.file != self.origin or self._awaited.get(resource.key) == resource.revision:
                continue  # not the cluster's; or written from this very version, whose change is yet to be seen
            try:
                self._patch(status)
            except ApiError as exc:
                failed = exc
                log.warning("status not written: %s", exc, extra={"object": status.resource.ref()})
                continue
            self._awaited[resource.key] = resource.revision
            written.append(resource.ref())
            self.writes += 1
        if written:
            log.info("gateway API status written", extra={"objects": ", ".join(written)})
        if failed is not None:
            raise failed
        return written

    def _patch(self, status: ObjectStatus) -> None:
        resource = status.resource
        scope = f"/namespaces/{resource.namespace}" if resource.namespace else ""
        path = f"/apis/{resource.group}/{resource.version}{scope}/{_PLURALS[resource.kind]}/{resource.name}/status"
        # A merge patch merges maps: what the stored status has and the new one lacks is removed.
        body = {key: None for key in resource.status if key not in status.status} | dict(status.status)
        call_json(self._api, "PATCH", path, body={"status": body}, content_type=MERGE_PATCH,
                  timeout=self.client.timeout)


class StatusReporting:
    """`source`, whose every update is also handed to `writer` (the latest wins)."""

    def __init__(self, source: ConfigSource, writer: GatewayStatusWriter, *, retry_after: float = 1.0) -> None:
        self.source = source
        self.writer = writer
        self.retry_after = retry_after
        self._latest: Sequence[Resource] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def nudge(self) -> None:
        """Compute and write again (from any thread): this replica just became the leader."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def updates(self) -> AsyncIterator[SourceUpdate]:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        worker = asyncio.create_task(self._work(self._wake))
        try:
            async with contextlib.aclosing(self.source.updates()) as updates:  # type: ignore[type-var]
                async for update in updates:
                    self._latest = update.resources
                    self._wake.set()
                    yield update
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _work(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            resources = self._latest
            if resources is None:
                continue
            try:
                await asyncio.to_thread(self.writer.write, resources)
            except Exception as exc:  # the API server's answer, or no answer: try again soon
                log.warning("gateway API status: %s; trying again in %.0fs", exc, self.retry_after)
                await asyncio.sleep(self.retry_after)
                wake.set()
