"""A live Envoy asked its first questions ahead, while the command imports what reads them.

Envoy's admin endpoint answers one question at a time, and a `/config_dump` question at a
thousand services takes it 15-75 ms (it builds the whole dump each time). A command that knows
its first questions before it has imported the code that reads the answers (protobuf classes,
the explain engine: about 100 ms) can have Envoy work meanwhile, on the other core.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshctl.inspect.acquire import DumpSource

__all__ = ["EarlySource"]


class EarlySource:
    """`source`, with `paths` asked in order by a background thread from the start.

    Asking for a path asked ahead waits for its answer (or raises the error it got, as asking
    would have); each such answer is handed out once, so a path asked again goes to Envoy again,
    as does any other path. A guess that turns out not to be wanted costs Envoy one answer and
    nothing else: the thread is a daemon, never waited for."""

    def __init__(self, source: DumpSource, paths: Sequence[str]) -> None:
        self._source = source
        self._pending = {path: threading.Event() for path in dict.fromkeys(paths)}
        self._answers: dict[str, bytes | BaseException] = {}
        threading.Thread(target=self._ask, args=(dict(self._pending),), name="early-admin", daemon=True).start()

    @property
    def name(self) -> str:
        return self._source.name

    @property
    def live(self) -> bool:
        return self._source.live

    def get(self, path: str) -> bytes:
        ready = self._pending.pop(path, None)
        if ready is None:
            return self._source.get(path)
        ready.wait()
        answer = self._answers.pop(path)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def post(self, path: str) -> bytes:
        return self._source.post(path)

    def _ask(self, events: dict[str, threading.Event]) -> None:
        for path, ready in events.items():
            try:
                self._answers[path] = self._source.get(path)
            except Exception as exc:  # handed to the asker, who would have got it asking
                self._answers[path] = exc
            ready.set()
