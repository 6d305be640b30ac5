"""How many streams serve holds open at once (`meshctl serve --max-connections`).

Every ADS and CSDS stream costs memory for as long as it is open (a proxy's watches, its
subscription, gRPC's buffers), and anyone who can reach the port can open them. Beyond the limit
a new stream is refused at once with RESOURCE_EXHAUSTED and a message that says which limit and
how to raise it, and the refusal is counted; the streams already open are untouched. Envoy keeps
one ADS stream per connection, so the limit is, for sidecars, a number of connections.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads DEFAULT_MAX_CONNECTIONS, and must not import gRPC for it
    import grpc

    from meshctl.xds.metrics import Metrics

__all__ = ["Admission", "DEFAULT_MAX_CONNECTIONS"]

log = logging.getLogger("meshctl.xds")

# About twice the proxies one serve process brings to a config change within a second on two
# cores (benchmarks/serve_fanout.py: 1,000 in about 1 s).
DEFAULT_MAX_CONNECTIONS = 2048


class Admission:
    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self.metrics = metrics
        self.open = 0

    @asynccontextmanager
    async def admitted(self, context: grpc.aio.ServicerContext, service: str) -> AsyncIterator[None]:
        """Hold one of the streams for the body; abort the call when none is left."""
        import grpc

        if self.open >= self.limit:
            self.metrics.refused_streams.inc(service)
            log.warning("stream refused: at the limit of %d", self.limit, extra={"peer": context.peer(), "service": service})
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"meshctl serve has {self.open} streams open, its limit (--max-connections {self.limit}); "
                "retry later or raise the limit",
            )
        self.open += 1
        self.metrics.open_streams.set(self.open)
        try:
            yield
        finally:
            self.open -= 1
            self.metrics.open_streams.set(self.open)
