"""`meshctl bootstrap`: the Envoy bootstrap that runs a workload's sidecar against `meshctl serve`.

How a workload's identity is found (its config, or the identity flags) is shared with
`meshctl agent` and `meshctl token`: `workload_proxy` and the flags declared here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from meshctl.cli.options import InputNamespaceOption, MeshConfigOption
from meshctl.formats import DocumentFormat
from meshctl.model.secrets import AGENT_SOCKET
from meshctl.targets import USAGE, parse_target

if TYPE_CHECKING:
    from meshctl.model.meshconfig import MeshConfig
    from meshctl.model.proxy import Proxy
    from meshctl.targets import Target


class Interception(StrEnum):
    REDIRECT = "REDIRECT"
    TPROXY = "TPROXY"
    NONE = "NONE"


def register(app: typer.Typer) -> None:
    app.command("bootstrap")(bootstrap)


IDENTITY_FLAGS = "--service-account SA (and --ip, --labels)"
ConfigDirOption = Annotated[str, typer.Option("--config-dir", help="Read the workload (IP, labels, service account) from here.")]
ServiceAccountOption = Annotated[str | None, typer.Option(
    "--service-account", help="The workload's service account: its identity when it is not in --config-dir.",
    show_default=False)]
IpOption = Annotated[str | None, typer.Option("--ip", help="The pod's IP (with --service-account; default 127.0.0.1).",
                                              show_default=False)]
LabelsOption = Annotated[str | None, typer.Option("--labels", help="The pod's labels, KEY=VALUE[,KEY=VALUE...].",
                                                  show_default=False)]
InterceptionOption = Annotated[Interception, typer.Option("--interception-mode", help="NONE: real bound listeners, no iptables.")]


class ControlPlaneAuth(StrEnum):
    NONE = "NONE"
    MUTUAL_TLS = "MUTUAL_TLS"


ControlPlaneAuthOption = Annotated[ControlPlaneAuth, typer.Option(
    "--control-plane-auth-policy",
    help="MUTUAL_TLS: Envoy connects to xDS with its workload certificate (serve --xds-mtls-address), proving "
         "its identity; a gateway needs it to be sent its credentialName Secrets.")]


def bootstrap(
    target: Annotated[str, typer.Argument(help=f"{USAGE}.")],
    xds_address: Annotated[
        list[str], typer.Option("--xds-address", help="HOST:PORT of meshctl serve; repeat for several replicas.")
    ] = ["127.0.0.1:15010"],  # noqa: B006 - typer's way to spell a list default
    admin_port: Annotated[int, typer.Option("--admin-port", help="Envoy admin port (on 127.0.0.1).", min=0, max=65535)] = 15000,
    interception: InterceptionOption = Interception.REDIRECT,
    config_dir: ConfigDirOption = "",
    namespace: InputNamespaceOption = "default",
    service_account: ServiceAccountOption = None,
    ip: IpOption = None,
    labels: LabelsOption = None,
    delta: Annotated[bool, typer.Option("--delta", help="Use incremental xDS (DELTA_GRPC) instead of state of the world.")] = False,
    sds_socket: Annotated[str, typer.Option("--sds-socket", help="The agent's SDS socket Envoy takes its certificates from.")] = AGENT_SOCKET,
    control_plane_auth: ControlPlaneAuthOption = ControlPlaneAuth.NONE,
    output: Annotated[DocumentFormat, typer.Option("--output", "-o")] = DocumentFormat.yaml,
    mesh_config: MeshConfigOption = None,
) -> int:
    """Print an Envoy bootstrap making `envoy -c` that workload's sidecar, fed by meshctl serve.

    The identity (namespace, service account, IP, labels) is the workload's in --config-dir, or
    exactly what --service-account, --ip and --labels say (they also override the config's); a
    target found nowhere without them is refused rather than given a guessed identity. Its
    certificates come from an agent's SDS socket: `meshctl agent` writes this same bootstrap and
    runs Envoy next to its SDS server; print it to run Envoy yourself next to an agent.

    Examples:

    \b
      meshctl bootstrap deploy/productpage-v1 --config-dir examples/bookinfo > productpage.yaml
      meshctl bootstrap web-0.shop --service-account web --ip 10.1.2.3 --labels app=web -o json
    """
    import json

    from google.protobuf import json_format

    from meshctl.cli.output import out
    from meshctl.errors import UsageError
    from meshctl.formats import to_yaml
    from meshctl.generate.bootstrap import ads_bootstrap

    addresses = []
    for address in xds_address:
        host, _, port_text = address.rpartition(":")
        if not host or not port_text.isdigit():
            raise UsageError(f"--xds-address must be HOST:PORT, not {address!r}")
        addresses.append((host.strip("[]"), int(port_text)))
    from meshctl.model.meshconfig import read_mesh_config

    mesh = read_mesh_config(mesh_config) if mesh_config else None
    proxy, account = workload_proxy(target, config_dir, namespace, interception.value,
                                    service_account=service_account, ip=ip, labels=labels, mesh=mesh)
    (host, port), *more = addresses
    config = ads_bootstrap(proxy, host, port, admin_port=admin_port, delta=delta, service_account=account,
                           sds_socket=sds_socket, more_replicas=more, mesh=mesh,
                           control_plane_auth=control_plane_auth.value)
    text = json_format.MessageToJson(config, preserving_proto_field_name=True, indent=2)
    out(text if output is DocumentFormat.json else to_yaml(json.loads(text)))
    return 0


def workload_proxy(target: str, config_dir: str, namespace: str, interception: str, *,
                   service_account: str | None = None, ip: str | None = None,
                   labels: str | None = None, mesh: MeshConfig | None = None) -> tuple[Proxy, str]:
    """The proxy of the workload `target` names and its service account: the workload's in the
    config directory (read with `mesh`), or exactly what the identity flags say (they also
    override the config's); a target found nowhere without them is refused rather than given a
    guessed identity."""
    from meshctl.cli.output import err
    from meshctl.errors import UsageError

    workload = parse_target(target, namespace)
    flags = _Identity.of(service_account, ip, labels)
    proxy: Proxy | None
    if config_dir:
        proxy, account = _from_config(config_dir, workload, namespace, interception, mesh, explicit=flags is not None)
    elif flags is None:
        raise UsageError(f"{workload}: no --config-dir to read its identity from; give --config-dir DIR, "
                         f"or the identity to build with {IDENTITY_FLAGS}")
    else:
        proxy, account = None, ""
    if flags is not None:
        if proxy is None and not workload.is_pod:
            raise UsageError(f"{workload}: a Deployment's pods are found with --config-dir; or name the pod ({USAGE})")
        proxy, account = flags.applied(proxy, workload, interception, account)
        err(f"{proxy.id}: identity from the flags: service account {proxy.namespace}/{account}, IP {proxy.ip}, "
            + (f"labels {_show_labels(proxy.labels)}" if proxy.labels else "no labels"))
    assert proxy is not None
    return proxy, account


@dataclass(frozen=True)
class _Identity:
    """What --service-account, --ip and --labels say; None fields were not given."""

    service_account: str | None
    ip: str | None
    labels: dict[str, str] | None

    @classmethod
    def of(cls, service_account: str | None, ip: str | None, labels: str | None) -> _Identity | None:
        from meshctl.config.values import is_dns1123_subdomain, is_ip, label_key_problem, label_value_problem
        from meshctl.errors import UsageError

        if service_account is None and ip is None and labels is None:
            return None
        if service_account is not None and not is_dns1123_subdomain(service_account):
            raise UsageError(f"--service-account: {service_account!r} is not a valid name (lower-case DNS-1123)")
        if ip is not None and not is_ip(ip):
            raise UsageError(f"--ip: {ip!r} is not an IP address")
        parsed = None
        if labels is not None:
            parsed = {}
            for pair in filter(None, labels.split(",")):
                key, equals, value = pair.partition("=")
                if not equals or label_key_problem(key) or label_value_problem(value):
                    raise UsageError(f"--labels: {pair!r} is not KEY=VALUE[,KEY=VALUE...] with valid label keys and values")
                parsed[key] = value
        return cls(service_account, ip, parsed)

    def applied(self, proxy: Proxy | None, target: Target, interception: str, account: str) -> tuple[Proxy, str]:
        """The proxy of the config with these fields replaced, or one built from them alone
        (which needs the service account: the identity is never guessed)."""
        from dataclasses import replace

        from meshctl.errors import UsageError
        from meshctl.model import proxy as proxies

        if proxy is None:
            if self.service_account is None:
                raise UsageError(f"{target}: --ip and --labels describe a pod; its identity needs --service-account")
            proxy = proxies.Proxy(id=target.dotted, namespace=target.namespace, ip="127.0.0.1",
                                  dns_domain=f"{target.namespace}.svc.cluster.local", interception=interception)
        if self.ip is not None:
            proxy = replace(proxy, ip=self.ip)
        if self.labels is not None:
            proxy = replace(proxy, labels=self.labels)
        return proxy, self.service_account or account


def _show_labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _from_config(config_dir: str, target: Target, namespace: str, interception: str, mesh: MeshConfig | None, *,
                 explicit: bool) -> tuple[Proxy | None, str]:
    """The workload's proxy and service account from the config; (None, "") when the target is
    not there but the flags give an identity to build, a usage error when they do not."""
    from meshctl.config.loader import load
    from meshctl.errors import BadInputError, UsageError
    from meshctl.model.snapshot import UnknownTargetError, build_snapshot

    result = load([config_dir], namespace)
    if result.problems:
        raise BadInputError([str(p) for p in result.problems])
    snapshot = build_snapshot(result.resources, mesh)
    try:
        proxy = snapshot.proxy(target, interception=interception)
    except UnknownTargetError as exc:
        if explicit:
            return None, ""
        raise UsageError(f"{exc}; or give the identity to build with {IDENTITY_FLAGS}") from None
    account = proxy.workload.service_account if proxy.workload else "default"
    return proxy, account
