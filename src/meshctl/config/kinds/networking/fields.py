"""Field types several networking kinds share: port names, protocols, hosts, namespaces, gateway
names, and the Destination a route or an egress proxy points at."""

from __future__ import annotations

from meshctl import protocols
from meshctl.config.kinds.common import PortSelector, domain_problem, is_istio_label
from meshctl.config.messages import Message, field, message
from meshctl.config.paths import FieldPath
from meshctl.config.schema import Int, List, Report, Str
from meshctl.config.values import fqdn_problem, is_dns1123_label, is_ip

__all__ = [
    "Destination",
    "GATEWAY_NAMES",
    "NAMESPACE",
    "PORT_NAME",
    "PORT_OR_ZERO",
    "SUBSET_NAME",
    "domain_rule",
    "fqdn_only_problem",
    "namespaced_host_problem",
    "protocol_problem",
]

PORT_OR_ZERO = Int(0, 65535)


def protocol_problem(name: str | None) -> str | None:
    """ValidateProtocol: an empty protocol is fine (Istio sniffs it), an unknown one is not."""
    if name and not protocols.known(name):
        return f"unsupported protocol {name!r}"
    return None


def _port_name_rule(value: str, path: FieldPath, report: Report) -> None:
    if not is_istio_label(value):
        report(path, f"invalid port name {value!r}: must be a DNS label")


PORT_NAME = Str(rules=[_port_name_rule])


def fqdn_only_problem(host: str) -> str | None:
    """Istio's ValidateFQDN: a host name without wildcards whose top-level domain has a letter."""
    problem = fqdn_problem(host, allow_wildcard=False)
    if problem:
        return problem
    return domain_problem(host)


def domain_rule(value: str, path: FieldPath, report: Report) -> None:
    problem = domain_problem(value)
    if problem:
        report(path, problem)


def _namespace_rule(value: str, path: FieldPath, report: Report) -> None:
    if value and not is_dns1123_label(value):
        report(path, f"invalid namespace {value!r}: must be a lowercase DNS label")


NAMESPACE = Str(rules=[_namespace_rule])


def _gateway_name_rule(value: str, path: FieldPath, report: Report) -> None:
    if value == "mesh":
        return
    ns, slash, name = value.partition("/")
    if not slash:
        problem = fqdn_only_problem(value)
        if problem:
            report(path, f"invalid gateway name {value!r}: {problem}")
        return
    if not ns or not name:
        report(path, f"invalid gateway {value!r}: both namespace and name are needed in namespace/name")
    elif not is_istio_label(ns):
        report(path, f"invalid namespace {ns!r} in gateway {value!r}")
    elif not is_istio_label(name):
        report(path, f"invalid gateway name {name!r} in {value!r}")


GATEWAY_NAMES = List(Str(min_len=1, rules=[_gateway_name_rule]))


def _destination_host_rule(value: str, path: FieldPath, report: Report) -> None:
    if value == "*":
        report(path, "'*' is not a valid destination host")
        return
    domain_rule(value, path, report)


def _subset_name_rule(value: str, path: FieldPath, report: Report) -> None:
    if value and not is_istio_label(value):
        report(path, f"invalid subset name {value!r}: must be a DNS label")


SUBSET_NAME = Str(rules=[_subset_name_rule])


@message(required=["host"])
class Destination(Message):
    """Where traffic goes: a service host, optionally one subset and port of it."""

    host: str = field(Str(min_len=1, rules=[_destination_host_rule]))
    subset: str = field(SUBSET_NAME)
    port: PortSelector | None = None


def _host_part_problem(name: str, *, gateway: bool) -> str | None:
    """The dnsName part of a Gateway or Sidecar host: fully qualified, wildcard only in front."""
    if name != "*" and "." not in name:
        return f"short name {name!r} is not allowed; use a fully qualified name"
    problem = domain_problem(name)
    if problem and not (gateway and is_ip(name)):
        return problem
    if "*" in name and name != "*" and not name.startswith("*."):
        return f"partial wildcard {name!r} is not allowed"
    return None


def namespaced_host_problem(host: str, *, gateway: bool) -> str | None:
    """Istio's ValidateNamespaceSlashWildcardHostname for Gateway servers and Sidecar egress.

    Sidecars need `namespace/dnsName`; gateways also take a bare dnsName (or an IP).
    """
    namespace, slash, name = host.partition("/")
    if not slash:
        if gateway:
            return _host_part_problem(host, gateway=True)
        return f"invalid host {host!r}: use namespace/dnsName, for example './*' or 'istio-system/*'"
    if not namespace or not name:
        return f"invalid host {host!r}: namespace and dnsName must not be empty"
    special = ("*", ".") if gateway else ("*", ".", "~")
    if namespace not in special and not is_istio_label(namespace):
        return f"invalid namespace {namespace!r} in host {host!r}"
    return _host_part_problem(name, gateway=gateway)
