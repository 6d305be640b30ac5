"""Leader election on a coordination.k8s.io Lease, against the emulator: one leader at a time,
a clean handover on release, a takeover only after a crashed leader's lease expires."""

from __future__ import annotations

import threading
import time

import pytest

from meshctl.kube.client import KubeClient, load_client
from meshctl.kube.lease import LeaderElector, LeaseTiming
from meshctl.kube.rest import call_json
from meshctl.loopback import wait_until

FAST = LeaseTiming(lease_duration=1.0, renew_deadline=0.6, retry_period=0.1)


class Timeline:
    """Who led when, as the electors' callbacks report it; fails on two leaders at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leaders: set[str] = set()
        self.overlaps: list[set[str]] = []
        self.events: list[tuple[str, str]] = []

    def elector(self, client: KubeClient, identity: str) -> LeaderElector:
        def started() -> None:
            with self.lock:
                self.leaders.add(identity)
                self.events.append(("started", identity))
                if len(self.leaders) > 1:
                    self.overlaps.append(set(self.leaders))

        def stopped() -> None:
            with self.lock:
                self.leaders.discard(identity)
                self.events.append(("stopped", identity))

        return LeaderElector(client, "istio-system", "meshctl-serve", identity, timing=FAST,
                             on_started=started, on_stopped=stopped)


@pytest.fixture
def client(kubeconfig: str) -> KubeClient:
    return load_client(kubeconfig, None)


def test_one_of_several_replicas_leads_and_a_released_lease_passes_on_at_once(client: KubeClient) -> None:
    timeline = Timeline()
    electors = [timeline.elector(client, f"serve-{i}") for i in range(3)]
    for elector in electors:
        elector.start()
    try:
        wait_until(lambda: len(timeline.leaders) == 1, 5, what="a leader")
        time.sleep(1.5)  # several renewals: still the same single leader
        (first,) = timeline.leaders
        leader = next(e for e in electors if e.identity == first)
        started = time.monotonic()
        leader.stop()  # clean: the lease is released
        wait_until(lambda: len(timeline.leaders) == 1 and first not in timeline.leaders, 5, what="a new leader")
        assert time.monotonic() - started < FAST.lease_duration  # no waiting for expiry
    finally:
        for elector in electors:
            elector.stop()
    assert not timeline.overlaps
    lease = call_json(client.api, "GET", "/apis/coordination.k8s.io/v1/namespaces/istio-system/leases/meshctl-serve")
    assert lease["spec"]["holderIdentity"] == "" and lease["spec"]["leaseTransitions"] >= 1  # released at the end


def test_a_crashed_leader_is_replaced_only_after_its_lease_expires(client: KubeClient) -> None:
    timeline = Timeline()
    first, second = timeline.elector(client, "serve-a"), timeline.elector(client, "serve-b")
    first.start()
    wait_until(lambda: timeline.leaders == {"serve-a"}, 5, what="serve-a leading")
    second.start()
    try:
        time.sleep(0.5)
        assert timeline.leaders == {"serve-a"}
        crashed = time.monotonic()
        first.stop(release=False)  # as if killed: the lease stays held
        timeline.leaders.discard("serve-a")
        wait_until(lambda: timeline.leaders == {"serve-b"}, 5, what="serve-b taking over")
        assert time.monotonic() - crashed >= FAST.lease_duration * 0.9
    finally:
        second.stop()
    assert not timeline.overlaps


def test_timings_that_could_let_two_lead_are_refused() -> None:
    from meshctl.errors import MeshctlError

    with pytest.raises(MeshctlError, match="retry period < renew deadline < lease duration"):
        LeaseTiming(lease_duration=5, renew_deadline=10, retry_period=1)
