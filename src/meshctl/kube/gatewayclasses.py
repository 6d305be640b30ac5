"""Making Istio's built-in GatewayClasses (model/gatewayclasses.py) in the cluster, as Istio's
controller does: each one the cluster lacks is created, with its controller and description.

Create only: the write is a POST, which never replaces an object, so a class a user made or
changed under that name stays as it is (the API server's 409 says it exists). A class deleted
comes back with the next update that lacks it. When the cluster serves no GatewayClass API (the
Gateway API's CRDs are not installed) nothing is made, and it is asked again a minute later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from meshctl.kube.resources import GATEWAY_API
from meshctl.kube.rest import ApiError, call_json
from meshctl.model.gatewayclasses import BuiltinClass, missing_classes

if TYPE_CHECKING:
    from meshctl.config.resource import Resource
    from meshctl.kube.client import KubeClient

__all__ = ["DefaultClasses"]

log = logging.getLogger("meshctl.kube")

_CLASSES = next(r for r in GATEWAY_API if r.kind == "GatewayClass")


class DefaultClasses:
    """Creates the built-in classes missing from the cluster's objects; a class it created, or
    found existing, is not asked for again until an update has shown it (the watch lags the
    write) or has shown it gone."""

    def __init__(self, client: KubeClient, *, retry_after: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.retry_after = retry_after
        self.clock = clock
        self.created = 0
        self._api = client.new_api_client()
        self._asked: set[str] = set()
        self._unserved_until = float("-inf")

    def ensure(self, resources: Sequence[Resource]) -> list[str]:
        """Create every built-in class `resources` (the cluster's objects) lack; the names
        created. ApiError when the API server refuses a creation for another reason than the
        class existing."""
        self._asked -= {r.name for r in resources if r.kind == "GatewayClass"}
        if self.clock() < self._unserved_until:
            return []
        made: list[str] = []
        for builtin in missing_classes(resources):
            if builtin.name in self._asked:
                continue
            outcome = self._create(builtin)
            if outcome is None:
                self._unserved_until = self.clock() + self.retry_after
                log.info("no GatewayClass API served (Gateway API CRDs not installed?): no class created")
                break
            self._asked.add(builtin.name)
            if outcome:
                made.append(builtin.name)
                self.created += 1
        if made:
            log.info("GatewayClass created", extra={"objects": ", ".join(made)})
        return made

    def _create(self, builtin: BuiltinClass) -> bool | None:
        """POST the class in the first version the API serves: True when made, False when one
        of that name exists, None when no version is served."""
        for version in _CLASSES.versions:
            try:
                call_json(self._api, "POST", _CLASSES.path(version),
                          body=builtin.manifest(_CLASSES.api_version(version)), timeout=self.client.timeout)
            except ApiError as exc:
                if exc.status == 404:
                    continue
                if exc.status == 409:
                    return False
                raise
            return True
        return None
