"""Keeping the webhook configurations pointed at serve's certificate, as istiod's webhook
controllers do (`pkg/webhooks`: the injector's caBundle patcher and the validation controller).

The API server calls serve's webhooks only if it trusts their certificate, which it checks
against each webhook's `caBundle`; Istio's charts leave that empty for the control plane to fill.
So serve watches the Mutating- and ValidatingWebhookConfigurations and keeps those labelled
`istio.io/rev=<its revision>` as `webhooks.configurations.kept` says: its CA bundle in every
injection webhook (`*sidecar-injector.istio.io`) and every validation webhook, written again
whenever someone changes it, and written only when it differs (a replace carrying the
resourceVersion read, so a concurrent writer makes it fail with 409 and it is tried again on the
newer object).

A validator installed with `failurePolicy: Ignore` is switched to `Fail` once the API server is
seen to reach serve's validation: a dry-run create of an invalid Gateway (`invalid-gateway`,
labelled with the revision and annotated to be always refused) must come back "denied the
request" (or the API server serve no Istio Gateways, or a webhook not support dry runs: then
no check is possible and it counts as done, with a warning). Until then it is tried again with
the validation controller's backoff (from 100 ms, doubling, up to a minute), which a failed
write gets too (istiod's injector patcher instead retries five times at 100 ms, then every
minute); once seen, a failurePolicy set back to Ignore is set to Fail again.

With a leader Lease only the leader writes (a replica that becomes leader goes over everything
again, `nudge`); without one every replica does, which is harmless, since each writes only what
differs and all of them hold the same CA.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meshctl.kube.resources import ApiResource
from meshctl.kube.rest import ApiError, call_json
from meshctl.kube.watch import Changed, Listed, Reflector
from meshctl.webhooks.configurations import kept, needs_fail_closed

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["PROBE_GATEWAY", "WEBHOOK_CONFIGURATIONS", "WebhookPatcher"]

log = logging.getLogger("meshctl.kube")

_ADMISSION = "admissionregistration.k8s.io"
WEBHOOK_CONFIGURATIONS = (
    ApiResource(_ADMISSION, ("v1",), "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", namespaced=False),
    ApiResource(_ADMISSION, ("v1",), "validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
                namespaced=False),
)
PROBE_GATEWAY = "invalid-gateway"
ALWAYS_REJECT = "internal.istio.io/webhook-always-reject"
RETRY_FIRST, RETRY_MAX = 0.1, 60.0
_READY_ANSWERS = (("denied the request", ""),
                  ("the server could not find the requested resource",
                   "the API server serves no Istio Gateways: validation cannot be checked; assuming it works"),
                  ("does not support dry run",
                   "a validating webhook does not support dry runs: validation cannot be checked; assuming it works"))

Key = tuple[str, str]
"""(plural, name) of a webhook configuration."""


class WebhookPatcher:
    """Keeps the webhook configurations of control plane `revision` (serving from `namespace`)
    holding `ca_bundle`, from `start` to `stop`; writes only while `leading()`."""

    def __init__(self, client: KubeClient, namespace: str, revision: str, ca_bundle: bytes, *,
                 leading: Callable[[], bool] = lambda: True) -> None:
        self.client = client
        self.namespace = namespace
        self.revision = revision
        self.ca_bundle = ca_bundle
        self.leading = leading
        self.fail_closed = False
        """Whether the API server has been seen reaching serve's validation (latched)."""
        self._api = client.new_api_client()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._due: dict[Key, float] = {}
        self._failures: dict[Key, int] = {}
        self._changed = threading.Condition()
        self._stopping = False
        self._reflectors = [Reflector(client, resource, self._sink) for resource in WEBHOOK_CONFIGURATIONS]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for reflector in self._reflectors:
            reflector.start()
        self._thread = threading.Thread(target=self._run, name="meshctl webhook patcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        for reflector in self._reflectors:
            reflector.stop(timeout)
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def nudge(self) -> None:
        """Go over every configuration now (this replica just became the leader)."""
        with self._changed:
            for key in self._objects:
                self._schedule(key, 0.0)
            self._changed.notify()

    def _sink(self, resource: ApiResource, event: Listed | Changed) -> None:
        with self._changed:
            if isinstance(event, Listed):
                for key in [key for key in self._objects if key[0] == resource.plural]:
                    del self._objects[key]
                for obj in event.objects:
                    self._seen(resource, obj)
            elif event.type == "DELETED":
                key = (resource.plural, str((event.object.get("metadata") or {}).get("name") or ""))
                self._objects.pop(key, None)
            else:
                self._seen(resource, event.object)
            self._changed.notify()

    def _seen(self, resource: ApiResource, obj: dict[str, Any]) -> None:
        key = (resource.plural, str((obj.get("metadata") or {}).get("name") or ""))
        self._objects[key] = obj
        self._schedule(key, 0.0)
        self._failures.pop(key, None)

    def _schedule(self, key: Key, delay: float) -> None:
        when = time.monotonic() + delay
        self._due[key] = min(when, self._due.get(key, when))

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping:
                    now = time.monotonic()
                    ready = [key for key, when in self._due.items() if when <= now]
                    if ready:
                        break
                    self._changed.wait(min(self._due.values(), default=now + 60.0) - now)
                if self._stopping:
                    return
                work = []
                for key in ready:
                    del self._due[key]
                    if key in self._objects:
                        work.append((key, self._objects[key]))
            for key, obj in work:
                retry = self._reconcile(key, obj)
                if retry:
                    with self._changed:
                        failures = self._failures.get(key, 0)
                        self._failures[key] = failures + 1
                        self._schedule(key, min(RETRY_FIRST * 2**failures, RETRY_MAX))
                else:
                    self._failures.pop(key, None)

    def _reconcile(self, key: Key, obj: dict[str, Any]) -> bool:
        """Write what `obj` lacks; whether to come back to it (a failed write, or a validator
        still waiting to fail closed)."""
        if not self.leading():
            return False
        waiting = needs_fail_closed(obj, self.revision) and not self.fail_closed
        if waiting and self._validation_reached():
            self.fail_closed = True
            self.nudge()  # every other validator too, at once
        desired = kept(obj, self.revision, self.ca_bundle, fail_closed=self.fail_closed)
        name = key[1]
        if desired is not None:
            try:
                written = call_json(self._api, "PUT", f"/apis/{_ADMISSION}/v1/{key[0]}/{name}", body=desired)
            except ApiError as exc:
                if exc.status == 404:
                    return False
                log.log(logging.INFO if exc.status == 409 else logging.WARNING,
                        "could not update the webhook configuration; trying again",
                        extra={"configuration": f"{obj.get('kind')}/{name}", "error": str(exc)})
                return True
            except Exception as exc:  # the API server unreachable: the same, later
                log.warning("could not update the webhook configuration; trying again",
                            extra={"configuration": f"{obj.get('kind')}/{name}", "error": f"{type(exc).__name__}: {exc}"})
                return True
            with self._changed:  # what is there now, should it be looked at again before its watch event
                if key in self._objects:
                    self._objects[key] = written
            log.info("webhook configuration updated: serve's CA bundle" + (", failing closed" if self.fail_closed and
                     needs_fail_closed(obj, self.revision) else ""), extra={"configuration": f"{obj.get('kind')}/{name}"})
        return waiting and not self.fail_closed

    def _validation_reached(self) -> bool:
        """Istio's check before failing closed: a dry-run create (or update, if one exists) of
        a Gateway the validation webhook always refuses must be refused by it."""
        path = f"/apis/networking.istio.io/v1alpha3/namespaces/{self.namespace}/gateways"
        gateway = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "Gateway",
                   "metadata": {"name": PROBE_GATEWAY, "namespace": self.namespace,
                                "labels": {"istio.io/rev": self.revision or "default"},
                                "annotations": {ALWAYS_REJECT: "true"}},
                   "spec": {}}
        try:
            try:
                call_json(self._api, "POST", path, query={"dryRun": "All"}, body=gateway)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                call_json(self._api, "PUT", f"{path}/{PROBE_GATEWAY}", query={"dryRun": "All"}, body=gateway)
        except ApiError as exc:
            for fragment, warning in _READY_ANSWERS:
                if fragment in str(exc):
                    if warning:
                        log.warning(warning, extra={"error": str(exc)})
                    log.info("the API server reaches serve's validation webhook: validators fail closed from now on")
                    return True
            log.info("not failing validation closed yet: the invalid Gateway was refused for another reason",
                     extra={"error": str(exc)})
            return False
        except Exception as exc:  # unreachable: not known yet
            log.info("not failing validation closed yet", extra={"error": f"{type(exc).__name__}: {exc}"})
            return False
        log.info("not failing validation closed yet: the invalid Gateway was not refused")
        return False
