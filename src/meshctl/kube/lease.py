"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does.

serve replicas need no coordination to serve xDS, but a few jobs must be done once per cluster
(writing a webhook's CA bundle, for instance): the replica holding the Lease does them. The
rules keep two replicas from ever both believing they lead:

- the Lease is taken or renewed with a compare-and-swap (the resourceVersion read goes back in
  the update; a concurrent writer makes it fail with 409, and that attempt is lost);
- another holder's Lease counts as expired only `lease_duration` after this replica last saw it
  change, on this replica's own clock (clocks of different nodes are never compared);
- a leader that cannot renew within `renew_deadline` steps down before its Lease could expire
  for the others (`renew_deadline` < `lease_duration`);
- on a clean stop the leader releases the Lease (empty holder), so another replica takes over
  at its next attempt instead of waiting for the Lease to expire.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshctlError
from meshctl.kube.rest import ApiError, call_json

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["LeaderElector", "LeaseTiming"]

log = logging.getLogger("meshctl.kube")


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    """client-go's defaults: a 15 s lease, renewed every 2 s, given up after 10 s of failures."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise MeshctlError("leader election needs retry period < renew deadline < lease duration")


class LeaderElector:
    """Campaigns for the Lease `namespace/name` as `identity` until stopped, calling
    `on_started` when it becomes the leader and `on_stopped` when it no longer is."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        timing: LeaseTiming = LeaseTiming(),
        on_started: Callable[[], None] = lambda: None,
        on_stopped: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing
        self.on_started = on_started
        self.on_stopped = on_stopped
        self.leading = False
        self._api = client.new_api_client()
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self._observed: tuple[str, str] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"meshctl lease {self.name}", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True, timeout: float = 5.0) -> None:
        """Stop campaigning; a leader releases the Lease unless `release` is False (a crash)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.leading:
            if release:
                self._release()
            self._step_down()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                acquired = self.try_acquire_or_renew()
            except (ApiError, OSError, ValueError) as exc:
                log.info("lease %s/%s: %s", self.namespace, self.name, exc)
                acquired = False
            now = time.monotonic()
            if acquired:
                self._renewed_at = now
                if not self.leading:
                    self.leading = True
                    log.info("leading", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity})
                    self.on_started()
            elif self.leading and now - self._renewed_at > self.timing.renew_deadline:
                log.warning("could not renew the lease in time; no longer leading",
                            extra={"lease": f"{self.namespace}/{self.name}"})
                self._step_down()
            self._stopping.wait(self.timing.retry_period)

    def try_acquire_or_renew(self) -> bool:
        """One attempt: True if this replica holds the Lease afterwards."""
        now = _micro_time()
        try:
            lease = call_json(self._api, "GET", self._path, timeout=self.client.timeout)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return self._write("POST", self._path.rsplit("/", 1)[0], self._record(None, now))
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
        if holder and holder != self.identity and time.monotonic() - self._observed_at < duration:
            return False
        return self._write("PUT", self._path, self._record(lease, now))

    def _record(self, lease: dict[str, Any] | None, now: str) -> dict[str, Any]:
        spec = dict((lease or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=int(self.timing.lease_duration), renewTime=now)
        metadata = {"name": self.name, "namespace": self.namespace}
        if lease is not None:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def _write(self, method: str, path: str, body: dict[str, Any]) -> bool:
        try:
            written = call_json(self._api, method, path, body=body, timeout=self.client.timeout)
        except ApiError as exc:
            if exc.status in (409, 422):  # someone else wrote first (or created it first)
                return False
            raise
        spec = written.get("spec") or {}
        self._observed, self._observed_at = (self.identity, str(spec.get("renewTime") or "")), time.monotonic()
        return True

    def _release(self) -> None:
        """Give the Lease up: an empty holder, which others may take at once."""
        try:
            lease = call_json(self._api, "GET", self._path, timeout=self.client.timeout)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"].update(holderIdentity="", leaseDurationSeconds=1)
            call_json(self._api, "PUT", self._path, body=lease, timeout=self.client.timeout)
            log.info("lease released", extra={"lease": f"{self.namespace}/{self.name}"})
        except (ApiError, OSError) as exc:
            log.info("could not release lease %s/%s: %s", self.namespace, self.name, exc)

    def _step_down(self) -> None:
        self.leading = False
        self.on_stopped()


def _micro_time() -> str:
    """A Kubernetes MicroTime: RFC 3339 with microseconds."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
