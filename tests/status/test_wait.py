"""The --wait loop with a fake clock: no test here sleeps."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from meshctl.errors import MeshctlError
from meshctl.status.syncz import CLUSTER, LISTENER, ProxySync, TypeStatus
from meshctl.status.wait import MIN_QUESTION_TIMEOUT, wait_for_sync


def proxy(name: str, *statuses: str) -> ProxySync:
    types = tuple(TypeStatus(url, status) for url, status in zip((CLUSTER, LISTENER), statuses, strict=False))
    return ProxySync(name, "Kubernetes", "default", "1.28.0", "istiod-a", types)


class FakeClock:
    """Time that moves only when the loop sleeps (and a little per poll)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def polls(*answers: Sequence[ProxySync] | Exception, clock: FakeClock, cost: float = 0.1):  # noqa: ANN201
    """A poll function giving these answers in turn (the last one forever); each takes `cost`."""
    asked: list[float] = []

    def poll(question_timeout: float) -> Sequence[ProxySync]:
        asked.append(question_timeout)
        clock.now += cost
        answer = answers[min(len(asked) - 1, len(answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return poll, asked


def test_returns_at_once_when_synced() -> None:
    clock = FakeClock()
    poll, asked = polls([proxy("a", "SYNCED", "SYNCED"), proxy("b", "SYNCED")], clock=clock)
    result = wait_for_sync(poll, 30, clock=clock, sleep=clock.sleep)
    assert result.synced and not result.laggards and len(result.proxies) == 2
    assert asked == [30] and clock.sleeps == []
    assert result.waited == pytest.approx(0.1)


def test_polls_until_synced() -> None:
    clock = FakeClock()
    stale = [proxy("a", "SYNCED", "STALE"), proxy("b", "SYNCED", "SYNCED")]
    not_sent = [proxy("a", "SYNCED", "NOT_SENT"), proxy("b", "SYNCED", "SYNCED")]
    done = [proxy("a", "SYNCED", "SYNCED"), proxy("b", "SYNCED", "SYNCED")]
    poll, asked = polls(stale, not_sent, done, clock=clock)
    result = wait_for_sync(poll, 30, clock=clock, sleep=clock.sleep, interval=0.5)
    assert result.synced
    assert clock.sleeps == [0.5, 0.5]
    assert asked == pytest.approx([30, 29.4, 28.8]), "each question gets the time left"


def test_times_out_with_the_laggards() -> None:
    clock = FakeClock()
    poll, asked = polls([proxy("a", "SYNCED", "SYNCED"), proxy("b", "ERROR", "SYNCED"), proxy("c", "UNKNOWN")],
                        clock=clock)  # fmt: skip
    result = wait_for_sync(poll, 2, clock=clock, sleep=clock.sleep, interval=0.5)
    assert not result.synced
    assert [p.proxy_id for p in result.laggards] == ["b", "c"], "c subscribed to nothing: not synced yet"
    assert result.waited == pytest.approx(2.1), "one last question at the deadline"
    assert asked[-1] == MIN_QUESTION_TIMEOUT, "the last question still gets a usable deadline"
    assert sum(clock.sleeps) == pytest.approx(2.0 - 0.1 * (len(asked) - 1))


def test_no_proxy_is_not_success() -> None:
    clock = FakeClock()
    poll, _ = polls([], [proxy("late", "SYNCED")], clock=clock)
    assert wait_for_sync(poll, 5, clock=clock, sleep=clock.sleep).synced
    clock = FakeClock()
    poll, _ = polls([], clock=clock)
    result = wait_for_sync(poll, 1, clock=clock, sleep=clock.sleep)
    assert not result.synced and result.proxies == [] and result.laggards == []


def test_a_control_plane_that_fails_for_a_while_is_asked_again() -> None:
    clock = FakeClock()
    poll, asked = polls(MeshctlError("cannot reach"), [proxy("a", "SYNCED")], clock=clock)
    assert wait_for_sync(poll, 5, clock=clock, sleep=clock.sleep).synced
    assert len(asked) == 2


def test_a_control_plane_that_never_answers_raises_its_error_at_the_deadline() -> None:
    clock = FakeClock()
    poll, asked = polls(MeshctlError("cannot reach the control plane"), clock=clock)
    with pytest.raises(MeshctlError, match="cannot reach the control plane"):
        wait_for_sync(poll, 3, clock=clock, sleep=clock.sleep)
    assert clock.now >= 103


def test_a_failure_after_an_answer_keeps_the_last_answer() -> None:
    clock = FakeClock()
    poll, _ = polls([proxy("a", "STALE")], MeshctlError("gone"), clock=clock)
    result = wait_for_sync(poll, 2, clock=clock, sleep=clock.sleep)
    assert not result.synced and [p.proxy_id for p in result.laggards] == ["a"]
