"""ServiceEntry: a service the mesh should know that Kubernetes does not (external APIs, VMs)."""

from __future__ import annotations

from typing import Any

from meshctl import protocols
from meshctl.config.kinds.common import (
    EXPORT_TO,
    IP_OR_CIDR,
    PORT,
    UNIX_PREFIX,
    NetworkWorkloadSelector,
    domain_problem,
)
from meshctl.config.kinds.networking.fields import PORT_NAME, PORT_OR_ZERO, fqdn_only_problem, protocol_problem
from meshctl.config.kinds.networking.workload_entry import WorkloadEntry
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Enum, List, Report, Str
from meshctl.config.values import is_ip

__all__ = ["ServiceEntry", "ServicePort"]


def _service_port_rule(port: dict[str, Any], path: FieldPath, report: Report) -> None:
    problem = protocol_problem(port.get("protocol"))
    if problem:
        report((*path, "protocol"), problem)


@message(required=["number", "name"], rules=[_service_port_rule])
class ServicePort(Message):
    number: int = field(PORT)
    protocol: str = ""
    name: str = field(PORT_NAME)
    target_port: int = field(PORT_OR_ZERO)


def _unique_service_ports_rule(value: list[dict[str, Any]], path: FieldPath, report: Report) -> None:
    names: set[str] = set()
    numbers: set[int] = set()
    for index, port in enumerate(value):
        if port["name"] in names:
            report((*path, index, "name"), f"port name {port['name']!r} is already defined")
        if port["number"] in numbers:
            report((*path, index, "number"), f"port {port['number']} is already defined")
        names.add(port["name"])
        numbers.add(port["number"])


def _service_entry_rule(spec: dict[str, Any], path: FieldPath, report: Report) -> None:
    hosts = spec["hosts"]
    for index, host in enumerate(hosts):
        problem = "'*' is not a valid ServiceEntry host" if host == "*" else domain_problem(host)
        if problem:
            report((*path, "hosts", index), problem)
    resolution = spec.get("resolution") or "NONE"
    if any("/" in address for address in spec.get("addresses") or []) and resolution not in ("NONE", "STATIC"):
        report((*path, "addresses"), "CIDR addresses need resolution NONE or STATIC")
    ports = spec.get("ports") or []
    endpoints = spec.get("endpoints") or []
    if resolution in ("NONE", "DYNAMIC_DNS") and endpoints:
        report((*path, "endpoints"), f"endpoints cannot be set with resolution {resolution}")
    if resolution in ("STATIC", "DNS", "DNS_ROUND_ROBIN"):
        _service_entry_endpoints_rule(spec, resolution, path, report)
    if resolution in ("DNS", "DNS_ROUND_ROBIN") and not endpoints:
        for index, host in enumerate(hosts):
            if fqdn_only_problem(host):
                report((*path, "hosts", index),
                       f"host {host!r} must be a fully qualified name without wildcards: resolution is "
                       f"{resolution} and there are no endpoints")
    if resolution == "DNS_ROUND_ROBIN" and len(endpoints) > 1:
        report((*path, "endpoints"), "resolution DNS_ROUND_ROBIN allows at most one endpoint")
    if resolution != "NONE" and len(hosts) > 1:
        for index, port in enumerate(ports):
            protocol = protocols.parse(port.get("protocol") or "")
            if protocol not in protocols.HTTP_FAMILY and protocol not in protocols.TLS_FAMILY:
                report((*path, "ports", index, "protocol"),
                       "several hosts need HTTP or TLS ports unless resolution is NONE")
                break


def _service_entry_endpoints_rule(spec: dict[str, Any], resolution: str, path: FieldPath,
                                  report: Report) -> None:
    port_names = {port["name"] for port in spec.get("ports") or []}
    for index, endpoint in enumerate(spec.get("endpoints") or []):
        where = (*path, "endpoints", index)
        address = endpoint.get("address") or ""
        if resolution == "STATIC" and address and not address.startswith(UNIX_PREFIX) and not is_ip(address):
            report((*where, "address"), f"endpoint address {address!r} must be an IP address with resolution STATIC")
        if address.startswith(UNIX_PREFIX) and len(port_names) != 1:
            report((*where, "address"), "a unix socket endpoint needs exactly one ServiceEntry port")
        for name in endpoint.get("ports") or {}:
            if name not in port_names:
                report((*where, "ports", name), f"endpoint port {name!r} is not a port of the ServiceEntry")


@message(required=["hosts"], oneof=[("workloadSelector", "endpoints")], rules=[_service_entry_rule])
class ServiceEntry(Message):
    """`location` and `resolution` are "" when not given (MESH_EXTERNAL and NONE in Istio)."""

    hosts: tuple[str, ...] = field(List(Str(min_len=1)))
    addresses: tuple[str, ...] = field(List(IP_OR_CIDR))
    ports: tuple[ServicePort, ...] = field(List(ServicePort.SCHEMA, rules=[_unique_service_ports_rule]))
    location: str = field(Enum("MESH_EXTERNAL", "MESH_INTERNAL"))
    resolution: str = field(Enum("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"))
    endpoints: tuple[WorkloadEntry, ...] = ()
    workload_selector: NetworkWorkloadSelector | None = None
    export_to: tuple[str, ...] = field(EXPORT_TO)
    subject_alt_names: tuple[str, ...] = ()
