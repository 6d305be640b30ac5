"""Which input objects a generation failure happened on.

A generator that fails on a value (an overflow, a translator bug) raises from deep inside code
that knows nothing of files. The objects it was translating are still on the stack: the innermost
frame that holds a config resource (or an Istio view of one) is the one that was translating it.
That frame's resources are reported, all of them, as the objects "being translated": a frame
may hold two (a VirtualService and the DestinationRule its route reads), and naming both is
honest where guessing one is not. Nothing is reported when no frame holds one.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator

from meshctl.config.resource import Resource
from meshctl.errors import GenerationError


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
