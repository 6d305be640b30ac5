"""`meshctl agent` reads a plain command line without Typer (meshctl.cli.agentrun): the values it
hands the agent must be exactly Typer's, its table of flags exactly Typer's command, and
anything it is not sure of must go to Typer, whose help and errors the user then sees."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FUZZ, examples

from meshctl.cli import agentrun, main

# Sidecar command lines as they are written: the test harness's, kube-inject's istio-proxy.
SIDECARS = [
    ["bench.default", "--xds-address", "127.0.0.1:15010", "--ca-address", "127.0.0.1:15012", "--ca-root-cert", "r.pem",
     "--token-file", "t", "--admin-port", "15000", "--status-port", "0", "--sds-socket", "/tmp/s/socket",
     "--workdir", "w", "--interception-mode", "NONE", "--concurrency", "1", "--secret-ttl", "24h",
     "--termination-drain-duration", "0s", "--log-level", "debug", "--service-account", "bench"],
    ["$(POD_NAME).$(POD_NAMESPACE)", "--xds-address", "istiod.istio-system.svc:15010", "--ca-address",
     "istiod.istio-system.svc:15012", "--ca-root-cert", "/var/run/secrets/istio/root-cert.pem", "--token-file",
     "/var/run/secrets/tokens/istio-token", "--service-account", "$(SERVICE_ACCOUNT)", "--ip", "$(INSTANCE_IP)",
     "--labels", "app=web,version=v1", "--trust-domain", "cluster.local", "--status-port", "15021",
     "--sds-socket", "./var/run/secrets/workload-spiffe-uds/socket", "--workdir", "./etc/istio/proxy",
     "--interception-mode", "REDIRECT", "--proxy-log-level", "warning", "--log-level", "info"],
    ["web-0.shop", "--xds-address=a:1", "--xds-address", "b:2", "-n", "shop", "--delta",
     "--control-plane-auth-policy", "MUTUAL_TLS", "--admin-port=65535", "--token", "abc"],
]


def _agent_command() -> Any:
    from typer.main import get_command

    from meshctl.cli import agent
    from meshctl.cli.application import _new_app

    group = _new_app()
    agent.register(group)
    return get_command(group).commands["agent"]  # type: ignore[attr-defined]


def _typer_values(args: list[str]) -> dict[str, Any] | None:
    """What Typer's `meshctl agent` hands `agentrun.run` for `args`; None if it refuses them."""
    seen: list[dict[str, Any]] = []

    def run(target: str, **values: Any) -> int:
        seen.append({"target": target, **values})
        return 0

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(agentrun, "run", run)
        patch.setattr(agentrun, "plain_call", lambda args: None)
        code = main(["agent", *args])
    if code != 0:
        assert not seen
        return None
    return seen[0]


def test_the_table_is_typers_command() -> None:
    from typer._click.types import IntRange

    params = {param.name: param for param in _agent_command().params}
    assert set(params) == {flag.param for flag in agentrun.FLAGS} | {"target"}
    for flag in agentrun.FLAGS:
        param = params[flag.param]
        assert set(param.opts) == set(flag.names), flag.param
        assert param.multiple == (flag.kind == agentrun.MANY), flag.param
        assert getattr(param, "is_flag", False) == (flag.kind == agentrun.SWITCH), flag.param
        default = param.default
        assert [getattr(value, "value", value) for value in default] if flag.kind == agentrun.MANY else \
            getattr(default, "value", default) == flag.default, flag.param
        if flag.kind == agentrun.NUMBER:
            assert isinstance(param.type, IntRange), flag.param
            assert (param.type.min, param.type.max) == (flag.low, flag.high), flag.param
        if flag.kind == agentrun.CHOICE:
            assert tuple(getattr(c, "value", c) for c in param.type.choices) == flag.choices, flag.param
            assert param.type.case_sensitive, flag.param


@pytest.mark.parametrize("args", SIDECARS, ids=["harness", "kube-inject", "repeated"])
def test_sidecar_command_lines_are_read_without_typer_as_typer_reads_them(args: list[str]) -> None:
    plain = agentrun.read_plain(args)
    assert plain is not None
    assert plain == _typer_values(args)


@pytest.mark.parametrize("args", [
    ["--help"], ["x", "-h"], [], ["x", "y"], ["x", "--bogus"], ["x", "--admin-port", "0"], ["x", "--admin-port", "1e3"],
    ["x", "--status-port=70000"], ["x", "--concurrency", "0"], ["x", "--interception-mode", "none"],
    ["x", "--delta=true"], ["x", "--token"], ["x", "-nshop"], ["x", "--", "y"], ["x", "--token-file", "-"],
])
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    assert agentrun.read_plain(args) is None


_NAMES = [name for flag in agentrun.FLAGS for name in flag.names] + ["--help", "-h", "--", "--bogus", "-x"]
_VALUES = ["0", "1", "15000", "65535", "65536", "-1", "+1", "1_0", "٣", " 7", "NONE", "none", "MUTUAL_TLS", "REDIRECT",
           "TPROXY", "", "a=b", "-", "--delta", "x.y", "24h"]
_TOKENS = st.one_of(st.sampled_from(_NAMES), st.sampled_from(_VALUES),
                    st.builds(lambda name, value: f"{name}={value}", st.sampled_from(_NAMES), st.sampled_from(_VALUES)))


# Command lines with a target somewhere among random tokens (most of them are then read plainly).
_LINES = st.builds(lambda rest, at: [*rest[:at], "web-0.shop", *rest[at:]], st.lists(_TOKENS, max_size=8),
                   st.integers(0, 8))


@settings(FUZZ, max_examples=examples(300))
@given(st.one_of(_LINES, st.lists(_TOKENS, max_size=8)))
def test_whatever_the_plain_reader_takes_typer_reads_the_same(args: list[str]) -> None:
    plain = agentrun.read_plain(args)
    if plain is not None:
        assert plain == _typer_values(args)


def test_a_plain_agent_command_line_imports_no_typer() -> None:
    """The point of the plain reader: a sidecar's start does without Typer's ~45 ms. Errors the
    agent itself finds are still the CLI's (exit 64, `error: ...`)."""
    script = ("import sys; from meshctl.cli import main; code = main(['agent', 'web-0', '--service-account', 'web', "
              "'--ca-root-cert', '/nonexistent/root.pem']); print(code, 'typer' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["64", "False"], done.stdout + done.stderr
    assert "error: --ca-root-cert /nonexistent/root.pem: No such file or directory" in done.stderr
