"""`meshctl iptables` as a command: flags and variables in, Istio's rules or a clear error out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from meshctl.capture.settings import FLAGS
from meshctl.cli import app
from testsupport import ROOT, run_cli

GOLDEN = ROOT / "tests" / "capture" / "golden"
ISTIO_ENV = [name for name in os.environ if name.startswith(("ISTIO_", "INBOUND_", "PROXY_", "REDIRECT_DNS",
                                                            "ENVOY_", "DRY_RUN", "DROP_INVALID", "INVALID_DROP"))]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ISTIO_ENV:
        monkeypatch.delenv(name)


def golden(name: str) -> str:
    text: str = (GOLDEN / f"{name}.golden").read_text()
    return text


def test_every_istio_iptables_flag_has_its_long_and_short_name() -> None:
    command = get_command(app).commands["iptables"]  # type: ignore[attr-defined]
    options = {tuple(sorted(p.opts)) for p in command.params}
    for flag in FLAGS:
        names = tuple(sorted([f"--{flag.name}"] + ([f"-{flag.short}"] if flag.short else [])))
        assert names in options, flag.name


def test_flags_give_istios_tproxy_golden(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search svc.cluster.local\nnameserver 127.0.0.53\n")
    code, out, err = run_cli(capsys, "iptables", "-n", "-m", "TPROXY", "-b", "*", "-x", "1.1.0.0/16",
                             "-i", "9.9.0.0/16", "--redirect-dns", "-u", "1337", "-g", "1337", "-c", "not-istio-nic",
                             "--pod-ips", "fd00::1", "--resolv-conf", str(resolv))
    assert (code, err) == (0, "")
    assert out == golden("tproxy")


def test_variables_give_the_same_rules_as_flags(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTIO_INBOUND_PORTS", "32000,31000")
    monkeypatch.setenv("ISTIO_INBOUND_INTERCEPTION_MODE", "TPROXY")
    monkeypatch.setenv("DRY_RUN", "true")
    monkeypatch.setenv("PROXY_UID", "1337")
    assert run_cli(capsys, "iptables", "--pod-ips", "10.1.2.3") == (0, golden("inbound-ports-tproxy"), "")


def test_environment_only_owner_groups(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTIO_OUTBOUND_OWNER_GROUPS", "java,202")
    code, out, _ = run_cli(capsys, "iptables", "-n", "-u", "1337", "--pod-ips", "10.1.2.3")
    assert (code, out) == (0, golden("outbound-owner-groups"))


def test_flag_overrides_variable(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTIO_SERVICE_CIDR", "10.0.0.0/8")
    code, out, _ = run_cli(capsys, "iptables", "-n", "-u", "1337", "-i", "", "--pod-ips", "10.1.2.3")
    assert (code, out) == (0, golden("empty"))


def test_redirect_dns_without_servers_warns_and_captures_no_dns(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search example.com\n")
    code, out, err = run_cli(capsys, "iptables", "-n", "-u", "1337", "--redirect-dns", "--pod-ips", "10.1.2.3",
                             "--resolv-conf", str(resolv))
    assert code == 0 and out == golden("empty")
    assert err == f"warning: --redirect-dns: no DNS server in {resolv} and no --capture-all-dns; DNS capture is off\n"


def test_unparsable_cidrs_are_skipped_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "iptables", "-n", "-u", "1337", "-i", "10.0.0.0/8,ten/8", "--pod-ips", "10.1.2.3")
    assert code == 0 and out == golden("ipnets")
    assert err == "warning: ignoring 'ten/8' in --istio-service-cidr: not a CIDR\n"


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["-x", "*"], 1, "error: invalid value for OUTBOUND_IP_RANGES_EXCLUDE"),
    (["--native-nftables"], 1, "error: --native-nftables (istio-nftables) is not supported"),
    (["--probe-timeout", "soon"], 64, "error: invalid argument 'soon' for --probe-timeout"),
    (["--pod-ips", "127.0.0.1,fe80::1"], 1, "error: no usable pod address"),
])
def test_bad_settings(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str) -> None:
    result = run_cli(capsys, "iptables", "-n", *(["--pod-ips", "10.1.2.3"] if "--pod-ips" not in argv else []), *argv)
    assert result[:2] == (code, "")
    assert result[2].startswith(message), result[2]


def _meshctl(argv: list[str], env: dict[str, str], user: int | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups"] if user is not None else []
    return subprocess.run([*prefix, sys.executable, "-m", "meshctl", "iptables", *argv], env=env,
                          capture_output=True, text=True, check=False)


def test_missing_iptables_is_named(tmp_path: Path) -> None:
    """Without any iptables on PATH, applying fails naming what to install; --dry-run needs none."""
    env = {**os.environ, "PATH": str(tmp_path)}
    done = _meshctl(["--pod-ips", "10.1.2.3", "-i", "*"], env)
    assert done.returncode == 1, done.stderr
    assert done.stderr == ("error: iptables (with iptables-save and iptables-restore) not found: install the "
                           "iptables package (Debian: apt-get install iptables)\n")
    assert _meshctl(["--pod-ips", "10.1.2.3", "-n"], env).returncode == 0


def test_missing_privileges_is_named() -> None:
    """Not root (CAP_NET_ADMIN missing): a clear error and exit 1, no traceback."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.fail("running as root without setpriv (util-linux): cannot drop privileges for this test")
    done = _meshctl(["--pod-ips", "10.1.2.3", "-i", "*"], dict(os.environ), 65534 if os.geteuid() == 0 else None)
    assert done.returncode == 1
    assert done.stderr.startswith("error: changing iptables rules needs root (or CAP_NET_ADMIN and CAP_NET_RAW)")
    assert "Traceback" not in done.stderr
