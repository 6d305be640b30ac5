"""Two sources as one: Istio's configuration from one (a directory), the service registry from
the other (a cluster), for `meshctl serve --kubernetes --config-dir DIR`.

Each source keeps its own rules (a refused file keeps its last good version; a refused object
too); the combination waits until both have delivered their first complete state, then yields
the union of the latest of each whenever either changes. The configuration source contributes
only Istio's and the Gateway API's kinds and the registry only the others (Secrets among them),
so a Service written in a file cannot shadow the cluster's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from meshctl.config.kinds import GATEWAY_API, ISTIO_NETWORKING, ISTIO_SECURITY
from meshctl.sources.base import ConfigSource, SourceUpdate

__all__ = ["CombinedSource"]

log = logging.getLogger("meshctl.sources")

_CONFIG_GROUPS = frozenset({ISTIO_NETWORKING, ISTIO_SECURITY, GATEWAY_API})


class CombinedSource:
    """Istio and Gateway API kinds from `config`, every other kind from `registry`."""

    def __init__(self, config: ConfigSource, registry: ConfigSource) -> None:
        self.config = config
        self.registry = registry

    async def updates(self) -> AsyncIterator[SourceUpdate]:
        queue: asyncio.Queue[tuple[int, SourceUpdate]] = asyncio.Queue()

        async def pump(index: int, source: ConfigSource) -> None:
            async for update in source.updates():
                queue.put_nowait((index, update))

        pumps = [asyncio.create_task(pump(0, self.config)), asyncio.create_task(pump(1, self.registry))]
        latest: list[SourceUpdate | None] = [None, None]
        ignored = 0
        try:
            while True:
                getting = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getting, *pumps}, return_when=asyncio.FIRST_COMPLETED)
                if getting not in done:
                    getting.cancel()
                    for task in done:
                        task.result()  # a source failed: raise its error
                    raise RuntimeError("a configuration source ended")
                index, update = getting.result()
                latest[index] = update
                config, registry = latest
                if config is None or registry is None:
                    continue
                kept = tuple(r for r in config.resources if r.group in _CONFIG_GROUPS)
                if len(kept) != len(config.resources) and ignored != len(config.resources) - len(kept):
                    ignored = len(config.resources) - len(kept)
                    log.info("objects in files that are not Istio configuration are ignored: "
                             "the registry comes from Kubernetes", extra={"ignored": ignored})
                registry_part = tuple(r for r in registry.resources if r.group not in _CONFIG_GROUPS)
                yield SourceUpdate(kept + registry_part, config.rejected + registry.rejected)
        finally:
            for task in pumps:
                task.cancel()
            for task in pumps:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
