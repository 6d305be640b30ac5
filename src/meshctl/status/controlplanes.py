"""Which control planes proxy-status asks, and the two questions it asks them.

With `--xds-address` there is one control plane, dialled directly. Without it, istioctl's
in-cluster path: every running istiod pod (`app=istiod`, narrowed by `-r` or `--xds-label`) in
the Istio namespace, each reached through a Kubernetes port-forward to its xDS port.

TLS ports (istiod's 15012, the default) are verified: the server's certificate must chain to
the mesh's root, from `--cert-dir DIR/root-cert.pem` or else the `istio-ca-root-cert`
ConfigMap istiod publishes, and name `--authority` (default `istiod.NS.svc`);
`--insecure` skips that. The caller proves who it is with a client certificate from
`--cert-dir` (`cert-chain.pem`, `key.pem`) or else a ServiceAccount token for audience
`istio-ca`, as istioctl does. `--plaintext` ports (15010, `meshctl serve`) get neither TLS nor
a token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshctlError, UsageError
from meshctl.kube.istiod import find_istiod_pods, root_certificate
from meshctl.kube.portforward import forward_local
from meshctl.kube.tokens import service_account_token
from meshctl.resources import CONFIG_DUMP, SYNCZ
from meshctl.status.client import DebugClient, Endpoint, Tls, UnknownToControlPlane

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient
    from meshctl.status.sections import ControlPlaneDump

__all__ = [
    "ControlPlaneOptions",
    "PLAINTEXT_HINT",
    "TOKEN_ACCOUNT",
    "ask_config_dump",
    "ask_syncz",
    "open_control_planes",
]

TOKEN_ACCOUNT = "default"
ROOT_CERT, CLIENT_CHAIN, CLIENT_KEY = "root-cert.pem", "cert-chain.pem", "key.pem"
PLAINTEXT_HINT = " (for a plaintext port, such as istiod's 15010 or meshctl serve, add --plaintext)"


@dataclass(frozen=True, slots=True)
class ControlPlaneOptions:
    """How to find and reach the control planes, as the flags give it."""

    xds_address: str | None = None
    plaintext: bool = False
    xds_port: int = 15012
    istio_namespace: str = "istio-system"
    revision: str | None = None
    xds_label: str | None = None
    timeout: float = 30.0
    cert_dir: str | None = None
    insecure: bool = False
    authority: str | None = None

    @property
    def server_name(self) -> str:
        """The name istiod's serving certificate carries, every revision's included
        (`--authority` overrides it)."""
        return self.authority or f"istiod.{self.istio_namespace}.svc"


@contextlib.contextmanager
def open_control_planes(options: ControlPlaneOptions, kube: Callable[[], KubeClient]) -> Iterator[list[DebugClient]]:
    """Clients for every control plane to ask, open for the duration of the block.

    `kube` gives the Kubernetes client; it is called only when needed (no address, the root
    certificate or a token for a TLS port), so `--xds-address ... --plaintext`, or TLS with
    `--cert-dir` holding a client certificate, works without any kubeconfig.
    """
    namespace = options.istio_namespace
    with contextlib.ExitStack() as stack:
        pods = [] if options.xds_address else find_istiod_pods(kube(), namespace, options.revision, options.xds_label)
        tls = None if options.plaintext else _tls(options, kube)
        token = None if tls is None or tls.client_chain else _token(kube, namespace)
        planes: list[tuple[Endpoint, Sequence[str]]] = []
        if options.xds_address:
            planes.append((Endpoint(options.xds_address, options.xds_address, tls, token), ()))
        for pod in pods:
            forward = stack.enter_context(forward_local(kube(), pod, options.xds_port))
            planes.append((Endpoint(pod.name, forward.address, tls, token), forward.errors))
        yield [
            stack.enter_context(
                DebugClient(endpoint, namespace=namespace, timeout=options.timeout, transport_failures=failures)
            )
            for endpoint, failures in planes
        ]


def _tls(options: ControlPlaneOptions, kube: Callable[[], KubeClient]) -> Tls:
    """What verifies the control plane, and the client certificate to show, from the flags."""
    chain = key = None
    roots: bytes | None = None
    roots_from = ""
    if options.cert_dir:
        directory = Path(options.cert_dir)
        if not directory.is_dir():
            raise UsageError(f"--cert-dir {options.cert_dir} is not a directory")
        if (directory / CLIENT_CHAIN).exists() != (directory / CLIENT_KEY).exists():
            raise UsageError(f"--cert-dir {options.cert_dir}: a client certificate needs both {CLIENT_CHAIN} and {CLIENT_KEY}")
        if (directory / CLIENT_CHAIN).exists():
            chain, key = (directory / CLIENT_CHAIN).read_bytes(), (directory / CLIENT_KEY).read_bytes()
        if not options.insecure:
            if not (directory / ROOT_CERT).exists():
                raise UsageError(f"--cert-dir {options.cert_dir} has no {ROOT_CERT} to verify the control plane with "
                                 "(or skip verification with --insecure)")
            roots, roots_from = (directory / ROOT_CERT).read_bytes(), str(directory / ROOT_CERT)
    elif not options.insecure:
        try:
            roots, roots_from = root_certificate(kube(), options.istio_namespace)
        except MeshctlError as exc:
            raise MeshctlError(
                f"{exc}; verifying istiod's TLS port takes the mesh's root, from the cluster or --cert-dir "
                f"(or skip it with --insecure){PLAINTEXT_HINT}"
            ) from None
    return Tls(options.server_name, roots, roots_from, chain, key)


def ask_syncz(clients: Sequence[DebugClient], timeout: float | None = None) -> dict[str, Any]:
    """Every control plane's syncz answer, keyed by how it was reached (pod name or address)."""
    return {client.endpoint.name: client.ask(SYNCZ, timeout=timeout) for client in clients}


def ask_config_dump(clients: Sequence[DebugClient], proxy_id: str) -> ControlPlaneDump:
    """What the first control plane that knows proxy `POD.NS` would send it.

    Like istioctl, control planes are asked in turn and the first answer with content wins; one
    that fails or knows nothing of the proxy is skipped. When none knows it, the error names the
    proxy and the proxies that are connected, so that a mistyped or stale name is seen as such
    rather than compared with a config made up for it.
    """
    from meshctl.status.sections import ControlPlaneDump

    problems = []
    unknown = False
    for client in clients:
        try:
            response = client.ask(CONFIG_DUMP, [proxy_id])
        except UnknownToControlPlane:
            response = None
        except MeshctlError as exc:
            problems.append(str(exc))
            continue
        if response is not None and response.resources:
            return ControlPlaneDump(response)
        unknown = True
        problems.append(
            f"the control plane at {client.endpoint.name} knows no proxy {proxy_id} "
            "(neither connected nor in its configuration)"
        )
    if unknown:
        problems.append(_connected_proxies(clients))
    raise MeshctlError("; ".join(problems))


def _connected_proxies(clients: Sequence[DebugClient]) -> str:
    """Which proxies the control planes list as connected, for a message about an unknown one."""
    from meshctl.status.syncz import read_syncz

    answers = {}
    for client in clients:
        try:
            answers[client.endpoint.name] = client.ask(SYNCZ)
        except MeshctlError:
            continue
    names = sorted({row.proxy_id for row in read_syncz(answers)})
    return f"connected proxies: {', '.join(names)}" if names else "no proxy is connected"


def _token(kube: Callable[[], KubeClient], namespace: str) -> str:
    """The ServiceAccount token istiod's TLS port expects from debug clients."""
    try:
        return service_account_token(kube(), namespace, TOKEN_ACCOUNT)
    except MeshctlError as exc:
        raise MeshctlError(
            f"{exc}; istiod's TLS port needs a Kubernetes token or a client certificate in --cert-dir{PLAINTEXT_HINT}"
        ) from None
