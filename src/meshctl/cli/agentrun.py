"""`meshctl agent` without Typer: what the command does, and a reader of its flags for the
common case.

A sidecar's start is timed in milliseconds (benchmarks/identity.py), and importing Typer and
building the command from its signature costs some 45 ms of it. The command is declared once,
with its help, in meshctl.cli.agent; its body is `run` here. A command line of flags spelled
plainly (`--flag value`, `--flag=value`, switches, the target) is read by `read_plain`, from
`FLAGS`, into the very values Click would give `run`, with no Typer imported. Anything else
(`--help`, an unknown flag, a value out of range, a missing target, `--`, `-nVALUE`) is left
to Typer, which prints its own help or error: so help and errors are Typer's, always, and
tests/cli/test_agent_flags.py checks that `FLAGS` and Typer's command agree and that both
readers give `run` the same values for whatever they both take.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from meshctl.model.secrets import AGENT_SOCKET

# istio-agent's paths inside a pod (relative to the working directory, `/` there).
TOKEN_FILE = "./var/run/secrets/tokens/istio-token"
CA_ROOT = "./var/run/secrets/istio/root-cert.pem"
WORKDIR = "./etc/istio/proxy"

TEXT, NUMBER, SWITCH, MANY, CHOICE = "text", "number", "switch", "many", "choice"


@dataclass(frozen=True, slots=True)
class Flag:
    """One of the agent's options as Click reads it: its names, what its value is, its default."""

    param: str
    names: tuple[str, ...]
    kind: str
    default: Any
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()

    def value(self, text: str) -> Any:
        """`text` as Click converts it for this flag; None where Click would refuse it (or
        might read it otherwise: only plain decimal digits are taken as a number)."""
        if self.kind == NUMBER:
            if not (text.isascii() and text.isdigit()):
                return None
            number = int(text)
            if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
                return None
            return number
        if self.kind == CHOICE:
            return text if text in self.choices else None
        return text


FLAGS = (
    Flag("xds_address", ("--xds-address",), MANY, ["127.0.0.1:15010"]),
    Flag("ca_address", ("--ca-address",), TEXT, "127.0.0.1:15012"),
    Flag("ca_root_cert", ("--ca-root-cert",), TEXT, CA_ROOT),
    Flag("token_file", ("--token-file",), TEXT, ""),
    Flag("token", ("--token",), TEXT, ""),
    Flag("config_dir", ("--config-dir",), TEXT, ""),
    Flag("namespace", ("-n", "--namespace"), TEXT, "default"),
    Flag("service_account", ("--service-account",), TEXT, None),
    Flag("ip", ("--ip",), TEXT, None),
    Flag("labels", ("--labels",), TEXT, None),
    Flag("trust_domain", ("--trust-domain",), TEXT, "cluster.local"),
    Flag("envoy", ("--envoy",), TEXT, ""),
    Flag("admin_port", ("--admin-port",), NUMBER, 15000, low=1, high=65535),
    Flag("status_port", ("--status-port",), NUMBER, 15021, low=0, high=65535),
    Flag("sds_socket", ("--sds-socket",), TEXT, AGENT_SOCKET),
    Flag("workdir", ("--workdir",), TEXT, WORKDIR),
    Flag("interception", ("--interception-mode",), CHOICE, "REDIRECT", choices=("REDIRECT", "TPROXY", "NONE")),
    Flag("delta", ("--delta",), SWITCH, False),
    Flag("control_plane_auth", ("--control-plane-auth-policy",), CHOICE, "NONE", choices=("NONE", "MUTUAL_TLS")),
    Flag("concurrency", ("--concurrency",), NUMBER, 2, low=1),
    Flag("proxy_log_level", ("--proxy-log-level",), TEXT, "warning"),
    Flag("secret_ttl", ("--secret-ttl",), TEXT, "24h"),
    Flag("drain", ("--termination-drain-duration",), TEXT, "5s"),
    Flag("log_level", ("--log-level",), TEXT, "info"),
    Flag("log_format", ("--log-format",), TEXT, "logfmt"),
)
_BY_NAME = {name: flag for flag in FLAGS for name in flag.names}


def read_plain(args: Sequence[str]) -> dict[str, Any] | None:
    """The values of `run`'s parameters from `args` (what follows `meshctl agent`), exactly as
    Click would give them; None for a command line it is not sure to read as Click does."""
    values = {flag.param: list(flag.default) if flag.kind == MANY else flag.default for flag in FLAGS}
    repeated: set[str] = set()
    target: str | None = None
    rest = iter(args)
    for arg in rest:
        if not arg.startswith("-"):
            if target is not None:
                return None
            target = arg
            continue
        name, equals, text = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        flag = _BY_NAME.get(name)
        if flag is None:
            return None
        if flag.kind == SWITCH:
            if equals:
                return None
            values[flag.param] = True
            continue
        if not equals:
            following = next(rest, None)
            if following is None or following.startswith("-"):
                return None
            text = following
        value = flag.value(text)
        if value is None:
            return None
        if flag.kind == MANY:
            if flag.param not in repeated:
                repeated.add(flag.param)
                values[flag.param] = []
            values[flag.param].append(value)
        else:
            values[flag.param] = value
    if target is None:
        return None
    values["target"] = target
    return values


def plain_call(args: Sequence[str]) -> Callable[[], int] | None:
    """`run` with the flags in `args`, when `read_plain` reads them; else None."""
    values = read_plain(args)
    return None if values is None else functools.partial(run, **values)


def run(
    target: str, *, xds_address: Sequence[str], ca_address: str, ca_root_cert: str, token_file: str, token: str,
    config_dir: str, namespace: str, service_account: str | None, ip: str | None, labels: str | None,
    trust_domain: str, envoy: str, admin_port: int, status_port: int, sds_socket: str, workdir: str,
    interception: str, delta: bool, control_plane_auth: str, concurrency: int, proxy_log_level: str,
    secret_ttl: str, drain: str, log_level: str, log_format: str,
) -> int:
    """The agent, run until Envoy exits (see meshctl.cli.agent for what each flag means)."""
    import os
    from pathlib import Path

    from meshctl.agent.envoy import EnvoySettings
    from meshctl.agent.launch import AgentOptions, launch
    from meshctl.agent.tokens import fixed_token, token_file as read_token_file
    from meshctl.cli.durations import duration_flag
    from meshctl.cli.logs import configure_logging
    from meshctl.cli.workload import workload_proxy
    from meshctl.envoybin import find_envoy
    from meshctl.errors import UsageError
    from meshctl.model.proxy import from_environment

    if token and token_file:
        raise UsageError("give the token once: --token-file or --token")
    (xds_host, xds_port), *more_xds = [_address("--xds-address", address) for address in xds_address]
    _address("--ca-address", ca_address)
    try:
        roots = Path(ca_root_cert).read_bytes()
    except OSError as exc:
        raise UsageError(f"--ca-root-cert {ca_root_cert}: {exc.strerror} (the mesh root, to verify the CA: "
                         "meshctl serve writes it to CA_DIR/root-cert.pem)") from None
    ttl = duration_flag(secret_ttl, "--secret-ttl", minimum=1)
    configure_logging(log_level, log_format)
    proxy, account = workload_proxy(target, config_dir, namespace, interception,
                                    service_account=service_account, ip=ip, labels=labels)
    proxy = from_environment(proxy, os.environ)  # what injection put in istio-proxy's environment
    options = AgentOptions(
        proxy=proxy, service_account=account, trust_domain=trust_domain, xds_host=xds_host,
        xds_port=xds_port, more_xds=tuple(more_xds),
        ca_address=ca_address, ca_roots=roots,
        token=fixed_token(token) if token else read_token_file(token_file or TOKEN_FILE),
        envoy=EnvoySettings(envoy or find_envoy(), concurrency=concurrency, log_level=proxy_log_level),
        workdir=Path(workdir), sds_socket=Path(sds_socket), admin_port=admin_port, status_port=status_port,
        delta=delta, secret_ttl=int(ttl), drain_duration=duration_flag(drain, "--termination-drain-duration"),
        control_plane_auth=control_plane_auth,
    )
    started = launch(options)
    # Envoy boots while the rest of the agent is imported and started.
    import asyncio

    from meshctl.agent.runner import Agent

    return asyncio.run(Agent(options, started).run())


def _address(flag: str, value: str) -> tuple[str, int]:
    from meshctl.addresses import split_address
    from meshctl.errors import MeshctlError, UsageError

    try:
        return split_address(value)
    except MeshctlError as exc:
        raise UsageError(f"{flag}: {exc}") from None
