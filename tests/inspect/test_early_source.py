"""EarlySource: questions asked ahead are answered from the background thread exactly once,
with the error asking would have raised, and everything else goes to the source itself."""

from __future__ import annotations

import threading

import pytest

from meshctl.errors import MeshctlError
from meshctl.inspect.acquire.early import EarlySource


class Recording:
    """A live source answering `path` with `answer:path`, failing for paths starting `bad`,
    and recording which thread asked what."""

    name = "http://envoy:15000"
    live = True

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.asked: list[tuple[str, str]] = []
        self.gate = gate

    def get(self, path: str) -> bytes:
        if self.gate is not None:
            self.gate.wait(5)
        self.asked.append((threading.current_thread().name, path))
        if path.startswith("bad"):
            raise MeshctlError(f"cannot reach Envoy admin for {path}")
        return f"answer:{path}".encode()

    def post(self, path: str) -> bytes:
        self.asked.append(("post", path))
        return b"posted"


def test_questions_asked_ahead_in_order_by_the_background_thread_and_answered_once() -> None:
    source = Recording()
    early = EarlySource(source, ["server_info", "config_dump?a", "server_info"])
    assert early.get("config_dump?a") == b"answer:config_dump?a"
    assert early.get("server_info") == b"answer:server_info"
    assert source.asked == [("early-admin", "server_info"), ("early-admin", "config_dump?a")]
    # Asked again: a new question to Envoy, from the asker's own thread.
    assert early.get("server_info") == b"answer:server_info"
    assert source.asked[-1] == (threading.current_thread().name, "server_info")
    assert (early.name, early.live) == (source.name, True)
    assert early.post("logging?level=debug") == b"posted"


def test_a_question_not_asked_ahead_goes_straight_to_the_source() -> None:
    gate = threading.Event()
    source = Recording(gate)
    early = EarlySource(source, ["server_info"])
    gate.set()
    assert early.get("config_dump?b") == b"answer:config_dump?b"
    assert ("MainThread", "config_dump?b") in source.asked


def test_the_asker_waits_for_an_answer_still_coming() -> None:
    gate = threading.Event()
    source = Recording(gate)
    early = EarlySource(source, ["server_info"])
    threading.Timer(0.05, gate.set).start()
    assert early.get("server_info") == b"answer:server_info"


def test_an_error_asking_ahead_is_raised_to_the_asker_and_the_rest_still_answered() -> None:
    early = EarlySource(Recording(), ["bad-path", "server_info"])
    with pytest.raises(MeshctlError, match="cannot reach Envoy admin for bad-path"):
        early.get("bad-path")
    assert early.get("server_info") == b"answer:server_info"
