"""The SDS secrets every Istio proxy gets from its node agent, and the cluster it asks through.

istio-agent (or `meshctl agent`) serves a sidecar its workload certificate as `default` and the
mesh's roots as `ROOTCA`, over a Unix socket next to Envoy; it also reads
certificates from the proxy's own files for names of the form `file-cert:CERT~KEY` and
`file-root:PATH` (DestinationRule TLS with file paths). Translation names these secrets, the SDS
server answers them, and the consistency check accepts them: all three read them here.
"""

from __future__ import annotations

__all__ = [
    "AGENT_CLUSTER",
    "AUTH_MUTUAL_TLS",
    "AUTH_NONE",
    "AGENT_SOCKET",
    "ROOT_CERTIFICATE",
    "WORKLOAD_CERTIFICATE",
    "agent_serves",
    "file_certificate",
    "file_certificate_paths",
    "file_root",
    "file_root_path",
]

AGENT_CLUSTER = "sds-grpc"
# Where istio-agent listens for its Envoy's SDS requests (relative to the working directory, `/`
# in a pod); `meshctl agent --sds-socket` and the bootstrap's `sds-grpc` cluster default to it.
AGENT_SOCKET = "./var/run/secrets/workload-spiffe-uds/socket"
WORKLOAD_CERTIFICATE = "default"
ROOT_CERTIFICATE = "ROOTCA"
# ProxyConfig's controlPlaneAuthPolicy: with MUTUAL_TLS, Envoy reaches the control plane with the
# workload certificate its agent serves it, so it needs that certificate before anything else.
AUTH_NONE = "NONE"
AUTH_MUTUAL_TLS = "MUTUAL_TLS"
_FILE_CERTIFICATE = "file-cert:"
_FILE_ROOT = "file-root:"


def file_certificate(certificate: str, key: str) -> str:
    """The secret name for a certificate chain and key the agent reads from the proxy's files."""
    return f"{_FILE_CERTIFICATE}{certificate}~{key}"


def file_root(path: str) -> str:
    """The secret name for trusted roots the agent reads from a file (or `system`)."""
    return f"{_FILE_ROOT}{path}"


def file_certificate_paths(name: str) -> tuple[str, str] | None:
    """(certificate chain, key) paths of a `file-cert:CERT~KEY` name, else None."""
    if not name.startswith(_FILE_CERTIFICATE):
        return None
    certificate, separator, key = name[len(_FILE_CERTIFICATE):].partition("~")
    return (certificate, key) if separator and certificate and key else None


def file_root_path(name: str) -> str | None:
    """The path of a `file-root:PATH` name (`system`: the host's bundle), else None."""
    return name[len(_FILE_ROOT):] or None if name.startswith(_FILE_ROOT) else None


def agent_serves(name: str) -> bool:
    """Whether the node agent answers an SDS request for `name`."""
    return name in (WORKLOAD_CERTIFICATE, ROOT_CERTIFICATE) or name.startswith((_FILE_CERTIFICATE, _FILE_ROOT))
