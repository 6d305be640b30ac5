"""Two sources as one: Istio's configuration from one (a directory), the service registry from
the other (a cluster), for `meshctl serve --kubernetes --config-dir DIR`.

Each source keeps its own rules (a refused file keeps its last good version; a refused object
too); the combination waits until both have delivered their first complete state, then yields
the union of the latest of each whenever either changes. The configuration source contributes
Istio's and the Gateway API's kinds, and the registry the others, so a Service written in a file
cannot shadow the cluster's.

Secrets come from both. istiod reads credentials from the cluster only, but it has no files; a
directory is meshctl's stand-in for a cluster, and a Gateway's certificate kept beside it in the
files is configuration the user gave, which dropping would leave its listener waiting for a
certificate forever. The cluster's Secret of a name wins, as the registry's Service does, and
the file's is then reported as shadowed.
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
    """Istio and Gateway API kinds from `config`, every other kind from `registry`; Secrets
    from both, the registry's where both have one."""

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
        shadowed: set[tuple[str, str]] = set()
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
                registry_part = tuple(r for r in registry.resources if r.group not in _CONFIG_GROUPS)
                cluster_secrets = {(r.namespace, r.name) for r in registry_part if r.kind == "Secret"}
                kept = tuple(r for r in config.resources if r.group in _CONFIG_GROUPS or
                             (r.kind == "Secret" and (r.namespace, r.name) not in cluster_secrets))
                clashes = {(r.namespace, r.name) for r in config.resources
                           if r.kind == "Secret" and (r.namespace, r.name) in cluster_secrets}
                for namespace, name in sorted(clashes - shadowed):
                    log.warning("a Secret in the files is shadowed by the cluster's of the same name",
                                extra={"secret": f"{namespace}/{name}"})
                shadowed = clashes
                dropped = sum(1 for r in config.resources if r.group not in _CONFIG_GROUPS and r.kind != "Secret")
                if dropped and ignored != dropped:
                    ignored = dropped
                    log.info("objects in files that are not Istio configuration or Secrets are ignored: "
                             "the registry comes from Kubernetes", extra={"ignored": ignored})
                yield SourceUpdate(kept + registry_part, config.rejected + registry.rejected)
        finally:
            for task in pumps:
                task.cancel()
            for task in pumps:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
