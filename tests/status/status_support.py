"""Helpers for the proxy-status tests: golden files, a frozen clock, syncz answers built by hand.

Golden files are compared byte for byte. To regenerate them after a deliberate change, run the
tests with MESHCTL_UPDATE_GOLDEN=1 and review the diff by hand (see golden/README.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.status.v3 import csds_pb2

from meshctl.status.syncz import CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE
from testsupport import assert_matches_golden

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
TYPES = {"CDS": CLUSTER, "LDS": LISTENER, "EDS": ENDPOINT, "RDS": ROUTE, "ECDS": EXTENSION_CONFIG}


def assert_golden(name: str, actual: str) -> None:
    assert_matches_golden(GOLDEN / name, actual)


def client_config(proxy: str, cluster: str, version: str, statuses: dict[str, tuple[str, float | None]],
                  namespace: str | None = None, error: str = "") -> csds_pb2.ClientConfig:
    """A proxy as istiod's syncz lists it: `statuses` maps a short type name to (status, age in
    seconds at NOW, or None for no push time)."""
    metadata = {"CLUSTER_ID": cluster, "ISTIO_VERSION": version}
    if namespace:
        metadata["NAMESPACE"] = namespace
    config = csds_pb2.ClientConfig(node=base_pb2.Node(id=proxy))
    config.node.metadata.update(metadata)
    for short, (status, age) in sorted(statuses.items(), key=lambda item: TYPES[item[0]]):
        entry = config.generic_xds_configs.add(type_url=TYPES[short], config_status=csds_pb2.ConfigStatus.Value(status))
        if age is not None:
            entry.last_updated.FromDatetime(NOW - timedelta(seconds=age))
        if status == "ERROR" and error:
            entry.error_state.details = error
    return config


def syncz_answer(istiod: str, configs: Iterable[csds_pb2.ClientConfig], nonce: str = "") -> discovery_pb2.DiscoveryResponse:
    """A syncz DiscoveryResponse with istiod's control plane identifier."""
    identifier = {"Component": "istiod", "ID": istiod, "Info": {"version": "1.28.0", "revision": "", "status": "Clean"}}
    response = discovery_pb2.DiscoveryResponse(type_url="istio.io/debug/syncz", version_info="1.28.0", nonce=nonce)
    response.control_plane.identifier = json.dumps(identifier, separators=(",", ":"))
    for config in configs:
        response.resources.add().Pack(config)
    return response


def dump_json(sections: Iterable[dict[str, Any]]) -> bytes:
    """An Envoy /config_dump document of the given sections."""
    return json.dumps({"configs": list(sections)}).encode()
