"""The workload a sidecar command is for (`meshctl bootstrap`, `meshctl agent`, `meshctl token`):
its proxy and service account, from its config or exactly from the identity flags.

No Typer here: `meshctl agent` finds its workload before Typer is imported (meshctl.cli.agentrun).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshctl.targets import USAGE, parse_target

if TYPE_CHECKING:
    from meshctl.model.meshconfig import MeshConfig
    from meshctl.model.proxy import Proxy
    from meshctl.targets import Target

IDENTITY_FLAGS = "--service-account SA (and --ip, --labels)"


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
