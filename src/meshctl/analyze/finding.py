"""What an analyzer reports, and the message types (IST codes) it reports with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from meshctl.config.paths import FieldPath
from meshctl.config.resource import Resource

Level = Literal["Error", "Warning", "Info"]


@dataclass(frozen=True, slots=True)
class MessageType:
    """One entry of Istio's messages.yaml: a stable code, its name and its level."""

    code: str
    name: str
    level: Level


REFERENCED_RESOURCE_NOT_FOUND = MessageType("IST0101", "ReferencedResourceNotFound", "Error")
CONFLICTING_MESH_GATEWAY_HOSTS = MessageType("IST0109", "ConflictingMeshGatewayVirtualServiceHosts", "Error")
CONFLICTING_SIDECAR_SELECTORS = MessageType("IST0110", "ConflictingSidecarWorkloadSelectors", "Error")
MULTIPLE_SIDECARS_WITHOUT_SELECTOR = MessageType("IST0111", "MultipleSidecarsWithoutWorkloadSelectors", "Error")
PORT_SELECTOR_REQUIRED = MessageType("IST0112", "VirtualServiceDestinationPortSelectorRequired", "Error")
PORT_NAME_CONVENTION = MessageType("IST0118", "PortNameIsNotUnderNamingConvention", "Info")
UNREACHABLE_RULE = MessageType("IST0130", "VirtualServiceUnreachableRule", "Warning")
INEFFECTIVE_MATCH = MessageType("IST0131", "VirtualServiceIneffectiveMatch", "Info")
HOST_NOT_IN_GATEWAY = MessageType("IST0132", "VirtualServiceHostNotFoundInGateway", "Warning")
GATEWAY_PORT_NOT_ON_SERVICE = MessageType("IST0162", "GatewayPortNotDefinedOnService", "Warning")
SUBSET_SELECTS_NO_PODS = MessageType("IST0173", "DestinationRuleSubsetNotSelectPods", "Error")
UNKNOWN_DESTINATION_RULE_HOST = MessageType("IST0174", "UnknownDestinationRuleHost", "Warning")
# Istio has no message for two DestinationRules on one host (it merges them silently), so this
# one is meshctl's own; the MSH prefix keeps it apart from Istio's IST codes.
MERGED_DESTINATION_RULES = MessageType("MSH0001", "MergedDestinationRules", "Warning")


@dataclass(frozen=True, slots=True)
class Finding:
    """One analyzer message, printed like `istioctl analyze`:
    `Warning [IST0101] (VirtualService default/reviews reviews.yaml:12) message`."""

    level: Level
    code: str
    message: str
    resource: Resource
    path: FieldPath = ()

    def __str__(self) -> str:
        origin = f"{self.resource.ref()} {self.resource.where(self.path)}"
        return f"{self.level} [{self.code}] ({origin}) {self.message}"

    @property
    def line(self) -> int:
        return self.resource.line_of(self.path)


def finding(kind: MessageType, resource: Resource, path: FieldPath, message: str,
            level: Level | None = None) -> Finding:
    """A Finding of message type `kind`; `level` overrides the type's level where Istio does."""
    return Finding(level or kind.level, kind.code, message, resource, path)


def go_quote(text: str) -> str:
    """Go's %q for the plain strings analyzers quote (host names, selectors)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_list(items: Iterable[object]) -> str:
    """Go's %v for a slice: `[a b c]`."""
    return "[" + " ".join(str(item) for item in items) + "]"
