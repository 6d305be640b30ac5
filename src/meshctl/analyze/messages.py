"""Istio's analysis message types: code, name, level and text template, as in its messages.yaml.

Each message's wording lives here once, as Istio's Go format template, and `MessageType.text`
fills it in with Go's rules for the verbs the templates use, so that every analyzer reports
Istio's exact words and `istioctl analyze` users (and their suppressions, dashboards and docs
links) recognise every line. Codes Istio has retired (IST0104 GatewayPortNotOnWorkload became
IST0162) are not reused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["ALL", "LEVELS", "Level", "MessageType", "by_code", "go_format", "go_quote", "level_rank"]

Level = Literal["Error", "Warning", "Info"]
LEVELS: tuple[Level, ...] = ("Error", "Warning", "Info")
"""Worst first: the order istioctl sorts and compares levels in."""


def level_rank(level: Level) -> int:
    """0 for Error, 1 for Warning, 2 for Info: lower is worse."""
    return LEVELS.index(level)


_VERB = re.compile(r"%[vsdqt%]")


def go_quote(text: str) -> str:
    """Go's %q for the plain strings analyzers quote (host names, selectors, names)."""
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _go_value(value: object) -> str:
    """Go's %v: slices as `[a b c]`, booleans as `true`/`false`, the rest as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_go_value(item) for item in value) + "]"
    return str(value)


def go_format(template: str, args: Iterable[object]) -> str:
    """Go's fmt.Sprintf for the verbs Istio's templates use (%v %s %d %q %t and %%)."""
    values = iter(args)

    def fill(match: re.Match[str]) -> str:
        verb = match.group(0)
        if verb == "%%":
            return "%"
        value = next(values)
        if verb == "%q":
            return go_quote(str(value))
        return _go_value(value)

    return _VERB.sub(fill, template)


@dataclass(frozen=True, slots=True)
class MessageType:
    """One entry of Istio's messages.yaml (meshctl's own entries use the MSH prefix)."""

    code: str
    name: str
    level: Level
    template: str

    def text(self, *args: object) -> str:
        return go_format(self.template, args)


def _type(code: str, name: str, level: Level, template: str) -> MessageType:
    return MessageType(code, name, level, template)


INTERNAL_ERROR = _type("IST0001", "InternalError", "Error", "Internal error: %v")
DEPRECATED = _type("IST0002", "Deprecated", "Warning", "Deprecated: %s")
REFERENCED_RESOURCE_NOT_FOUND = _type("IST0101", "ReferencedResourceNotFound", "Error",
                                      "Referenced %s not found: %q")
NAMESPACE_NOT_INJECTED = _type(
    "IST0102", "NamespaceNotInjected", "Info",
    "The namespace is not enabled for Istio injection. Run 'kubectl label namespace %s istio-injection=enabled' to "
    "enable it, or 'kubectl label namespace %s istio-injection=disabled' to explicitly mark it as not needing "
    "injection.")
POD_MISSING_PROXY = _type(
    "IST0103", "PodMissingProxy", "Warning",
    "The pod %s is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.")
SCHEMA_VALIDATION_ERROR = _type("IST0106", "SchemaValidationError", "Error", "Schema validation error: %v")
MISPLACED_ANNOTATION = _type("IST0107", "MisplacedAnnotation", "Warning",
                             "Misplaced annotation: %s can only be applied to %s")
UNKNOWN_ANNOTATION = _type("IST0108", "UnknownAnnotation", "Warning", "Unknown annotation: %s")
CONFLICTING_MESH_GATEWAY_HOSTS = _type(
    "IST0109", "ConflictingMeshGatewayVirtualServiceHosts", "Error",
    "The VirtualServices %s associated with mesh gateway define the same host %s which can lead to undefined "
    "behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.")
CONFLICTING_SIDECAR_SELECTORS = _type(
    "IST0110", "ConflictingSidecarWorkloadSelectors", "Error",
    "The Sidecars %v in namespace %q select the same workload pod %q, which can lead to undefined behavior.")
MULTIPLE_SIDECARS_WITHOUT_SELECTOR = _type(
    "IST0111", "MultipleSidecarsWithoutWorkloadSelectors", "Error",
    "The Sidecars %v in namespace %q have no workload selector, which can lead to undefined behavior.")
PORT_SELECTOR_REQUIRED = _type(
    "IST0112", "VirtualServiceDestinationPortSelectorRequired", "Error",
    "This VirtualService routes to a service %q that exposes multiple ports %v. Specifying a port in the destination "
    "is required to disambiguate.")
DEPLOYMENT_MULTIPLE_SERVICES = _type(
    "IST0116", "DeploymentAssociatedToMultipleServices", "Warning",
    "This deployment %s is associated with multiple services using port %d but different protocols: %v")
PORT_NAME_CONVENTION = _type(
    "IST0118", "PortNameIsNotUnderNamingConvention", "Info",
    "Port name %s (port: %d, targetPort: %s) doesn't follow the naming convention of Istio port.")
NAMESPACE_MULTIPLE_INJECTION_LABELS = _type(
    "IST0123", "NamespaceMultipleInjectionLabels", "Warning",
    "The namespace has more than one type of injection labels %v, which may lead to undefined behavior. Make sure "
    "only one injection label exists.")
INVALID_ANNOTATION = _type("IST0125", "InvalidAnnotation", "Warning", "Invalid annotation %s: %s")
NO_MATCHING_WORKLOADS = _type("IST0127", "NoMatchingWorkloadsFound", "Warning",
                              "No matching workloads for this resource with the following labels: %s")
NO_CA_DESTINATION_LEVEL = _type(
    "IST0128", "NoServerCertificateVerificationDestinationLevel", "Warning",
    "DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server "
    "identity for host: %s")
NO_CA_PORT_LEVEL = _type(
    "IST0129", "NoServerCertificateVerificationPortLevel", "Warning",
    "DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server "
    "identity for host: %s at port %s")
UNREACHABLE_RULE = _type("IST0130", "VirtualServiceUnreachableRule", "Warning", "VirtualService rule %v not used (%s).")
INEFFECTIVE_MATCH = _type(
    "IST0131", "VirtualServiceIneffectiveMatch", "Info",
    "VirtualService rule %v match %v is not used (duplicate/overlapping match in rule %v).")
HOST_NOT_IN_GATEWAY = _type("IST0132", "VirtualServiceHostNotFoundInGateway", "Warning",
                            "one or more host %v defined in VirtualService %s not found in Gateway %s.")
SCHEMA_WARNING = _type("IST0133", "SchemaWarning", "Warning", "Schema validation warning: %v")
SERVICE_ENTRY_ADDRESSES_REQUIRED = _type("IST0134", "ServiceEntryAddressesRequired", "Warning",
                                         "ServiceEntry addresses are required for this protocol.")
DEPRECATED_ANNOTATION = _type("IST0135", "DeprecatedAnnotation", "Info",
                              "Annotation %q has been deprecated%s and may not work in future Istio versions.")
DEPLOYMENT_CONFLICTING_PORTS = _type(
    "IST0137", "DeploymentConflictingPorts", "Warning",
    "This deployment %s is associated with multiple services %v using targetPort %q but different ports: %v.")
GATEWAY_DUPLICATE_CERTIFICATE = _type(
    "IST0138", "GatewayDuplicateCertificate", "Warning",
    "Duplicate certificate in multiple gateways %v may cause 404s if clients re-use HTTP2 connections.")
INGRESS_ROUTE_RULES_NOT_AFFECTED = _type(
    "IST0140", "IngressRouteRulesNotAffected", "Warning",
    "Subset in virtual service %s has no effect on ingress gateway %s requests")
INVALID_APPLICATION_UID = _type("IST0144", "InvalidApplicationUID", "Warning",
                                "User ID (UID) 1337 is reserved for the sidecar proxy.")
CONFLICTING_GATEWAYS = _type("IST0145", "ConflictingGateways", "Error",
                             "Conflict with gateways %s (workload selector %s, port %s, hosts %v).")
EXTERNAL_NAME_INVALID_PORT_NAME = _type(
    "IST0150", "ExternalNameServiceTypeInvalidPortName", "Warning",
    "Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for "
    "ports serving TCP protocol from being forwarded correctly")
IMAGE_AUTO_WITHOUT_INJECTION_WARNING = _type(
    "IST0146", "ImageAutoWithoutInjectionWarning", "Warning",
    "%s %s contains `image: auto` but does not match any Istio injection webhook selectors.")
IMAGE_AUTO_WITHOUT_INJECTION_ERROR = _type(
    "IST0147", "ImageAutoWithoutInjectionError", "Error",
    "%s %s contains `image: auto` but does not match any Istio injection webhook selectors.")
NAMESPACE_INJECTION_ENABLED_BY_DEFAULT = _type(
    "IST0148", "NamespaceInjectionEnabledByDefault", "Info",
    "is enabled for Istio injection, as Istio is installed with enableNamespacesByDefault as true.")
JWT_CLAIM_ROUTING_WITHOUT_REQUEST_AUTHN = _type(
    "IST0149", "JwtClaimBasedRoutingWithoutRequestAuthN", "Error",
    "The virtual service uses the JWT claim based routing (key: %s) but found no request authentication for the "
    "gateway (%s) pod (%s). The request authentication must first be applied for the gateway pods to validate the "
    "JWT token and make the claims available for routing.")
GATEWAY_PORT_NOT_ON_SERVICE = _type(
    "IST0162", "GatewayPortNotDefinedOnService", "Warning",
    "The gateway is listening on a target port (port %d) that is not defined in the Service associated with its "
    "workload instances (Pod selector %s). If you need to access the gateway port through the gateway Service, it "
    "will not be available.")
INVALID_GATEWAY_CREDENTIAL = _type(
    "IST0161", "InvalidGatewayCredential", "Error",
    "The credential referenced by the Gateway %s in namespace %s is invalid, which can cause the traffic not to work "
    "as expected.")
REFERENCED_INTERNAL_GATEWAY = _type(
    "IST0165", "ReferencedInternalGateway", "Warning",
    "Gateway reference in VirtualService %s is to an implementation-generated internal Gateway: %s.")
INEFFECTIVE_SELECTOR = _type("IST0166", "IneffectiveSelector", "Warning",
                             "Ineffective selector on Kubernetes Gateway %s. Use the TargetRef field instead.")
INEFFECTIVE_POLICY = _type("IST0167", "IneffectivePolicy", "Warning", "The policy has no impact: %s.")
SUBSET_SELECTS_NO_PODS = _type(
    "IST0173", "DestinationRuleSubsetNotSelectPods", "Error",
    "The Subset %s defined in the DestinationRule does not select any pods. Which may lead to 503 UH "
    "(NoHealthyUpstream).")
UNKNOWN_DESTINATION_RULE_HOST = _type(
    "IST0174", "UnknownDestinationRuleHost", "Warning",
    "The host %s defined in the DestinationRule does not match any services in the mesh.")
# Istio has no message for two DestinationRules on one host (it merges them silently), so this
# one is meshctl's own; the MSH prefix keeps it apart from Istio's IST codes.
MERGED_DESTINATION_RULES = _type(
    "MSH0001", "MergedDestinationRules", "Warning",
    "DestinationRules %s define the same host %s; Istio merges them: %s.")

ALL: tuple[MessageType, ...] = tuple(
    sorted((value for value in globals().values() if isinstance(value, MessageType)), key=lambda t: t.code))


def by_code(code: str) -> MessageType | None:
    """The message type of a code (`IST0102`), for checking `--suppress` values."""
    return next((kind for kind in ALL if kind.code == code), None)
