"""`meshctl bootstrap`: the Envoy bootstrap that runs a workload's sidecar against `meshctl serve`."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from meshctl.cli.options import InputNamespaceOption
from meshctl.targets import USAGE, parse_target

if TYPE_CHECKING:
    from meshctl.model.proxy import Proxy
    from meshctl.targets import Target


class Format(str, Enum):
    yaml = "yaml"
    json = "json"


class Interception(str, Enum):
    REDIRECT = "REDIRECT"
    TPROXY = "TPROXY"
    NONE = "NONE"


def register(app: typer.Typer) -> None:
    app.command("bootstrap")(bootstrap)


def bootstrap(
    target: Annotated[str, typer.Argument(help=f"{USAGE}.")],
    xds_address: Annotated[str, typer.Option("--xds-address", help="HOST:PORT of meshctl serve.")] = "127.0.0.1:15010",
    admin_port: Annotated[int, typer.Option("--admin-port", help="Envoy admin port (on 127.0.0.1).", min=0, max=65535)] = 15000,
    interception: Annotated[Interception, typer.Option("--interception-mode", help="NONE: real bound listeners, no iptables.")] = Interception.REDIRECT,
    config_dir: Annotated[str, typer.Option("--config-dir", help="Read the workload (IP, labels, service account) from here.")] = "",
    namespace: InputNamespaceOption = "default",
    delta: Annotated[bool, typer.Option("--delta", help="Use incremental xDS (DELTA_GRPC) instead of state of the world.")] = False,
    output: Annotated[Format, typer.Option("--output", "-o")] = Format.yaml,
) -> int:
    """Print an Envoy bootstrap making `envoy -c` that workload's sidecar, fed by meshctl serve."""
    import json

    from google.protobuf import json_format

    from meshctl.cli.output import out
    from meshctl.errors import UsageError
    from meshctl.formats import to_yaml
    from meshctl.generate.bootstrap import ads_bootstrap
    from meshctl.model import proxy as proxies

    host, _, port_text = xds_address.rpartition(":")
    if not host or not port_text.isdigit():
        raise UsageError(f"--xds-address must be HOST:PORT, not {xds_address!r}")
    workload = parse_target(target, namespace)
    if config_dir:
        proxy, account = _from_config(config_dir, workload, namespace, interception.value)
    else:
        if not workload.is_pod:
            raise UsageError("deploy/NAME targets need --config-dir to find the Deployment")
        proxy = proxies.Proxy(id=workload.dotted, namespace=workload.namespace, ip="127.0.0.1",
                              dns_domain=f"{workload.namespace}.svc.cluster.local", interception=interception.value)
        account = "default"
    config = ads_bootstrap(proxy, host, int(port_text), admin_port=admin_port, delta=delta, service_account=account)
    text = json_format.MessageToJson(config, preserving_proto_field_name=True, indent=2)
    out(text if output is Format.json else to_yaml(json.loads(text)))
    return 0


def _from_config(config_dir: str, target: Target, namespace: str, interception: str) -> tuple[Proxy, str]:
    from meshctl.config.loader import load
    from meshctl.errors import BadInputError, UsageError
    from meshctl.model.snapshot import UnknownTargetError, build_snapshot

    result = load([config_dir], namespace)
    if result.problems:
        raise BadInputError([str(p) for p in result.problems])
    snapshot = build_snapshot(result.resources)
    try:
        proxy = snapshot.proxy(target, interception=interception)
    except UnknownTargetError as exc:
        raise UsageError(str(exc)) from None
    account = proxy.workload.service_account if proxy.workload else "default"
    return proxy, account
