"""WorkloadEntry: a workload outside Kubernetes (a VM), also a ServiceEntry's inline endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshctl.config.kinds.common import LABELS, PORT, UINT32, UNIX_PREFIX, unix_address_problem
from meshctl.config.kinds.networking.fields import PORT_NAME, fqdn_only_problem
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Map, Report
from meshctl.config.values import is_ip

__all__ = ["WorkloadEntry"]


def _workload_entry_rule(entry: dict[str, Any], path: FieldPath, report: Report) -> None:
    address = entry.get("address") or ""
    if not address:
        if not entry.get("network"):
            report((*path, "address"), "address is required unless network is set")
    elif address.startswith(UNIX_PREFIX):
        problem = unix_address_problem(address[len(UNIX_PREFIX):])
        if problem:
            report((*path, "address"), problem)
        if entry.get("ports"):
            report((*path, "ports"), "a unix socket endpoint cannot have ports")
    elif not is_ip(address) and fqdn_only_problem(address):
        report((*path, "address"), f"address {address!r} is neither an IP address nor a host name")


@message(rules=[_workload_entry_rule])
class WorkloadEntry(Message):
    """`ports` maps a service port name to the port this workload serves it on."""

    address: str = ""
    ports: Mapping[str, int] = field(Map(PORT, key=PORT_NAME))
    labels: Mapping[str, str] = field(LABELS)
    network: str = ""
    locality: str = ""
    weight: int = field(UINT32)
    service_account: str = ""
