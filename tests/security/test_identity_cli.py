"""The identity commands' edges: `meshctl token` (minting needs the CA directory), and the flags
of `meshctl agent` and serve's CA refused before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from testsupport import EXAMPLES, run_cli

from meshctl.security.authenticate import Credentials
from meshctl.security.cadir import open_ca_directory
from meshctl.security.tokens import TokenAuthenticator


def test_token_names_the_workloads_service_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = open_ca_directory(tmp_path / "ca", "cluster.local")
    code, out, err = run_cli(capsys, "token", "deploy/reviews-v1.default", "--ca-dir", str(tmp_path / "ca"),
                             "--config-dir", str(EXAMPLES / "bookinfo"), "--ttl", "10m")
    assert code == 0, err
    caller = TokenAuthenticator(directory.token_key.public_key(), "cluster.local").authenticate(
        Credentials({"authorization": (f"Bearer {out.strip()}",)}))
    assert caller.identities == ("spiffe://cluster.local/ns/default/sa/bookinfo-reviews",)
    assert err.startswith("token for spiffe://cluster.local/ns/default/sa/bookinfo-reviews (pod reviews-v1-")
    assert err.rstrip().endswith("valid for 10m")
    code, out, _ = run_cli(capsys, "token", "web.shop", "--ca-dir", str(tmp_path / "ca"), "--service-account", "cart")
    assert code == 0
    caller = TokenAuthenticator(directory.token_key.public_key(), "cluster.local").authenticate(
        Credentials({"authorization": (f"Bearer {out.strip()}",)}))
    assert caller.identities == ("spiffe://cluster.local/ns/shop/sa/cart",)


def test_token_without_a_ca_says_how_to_get_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "token", "web.default", "--ca-dir", str(tmp_path / "nothing"),
                             "--service-account", "web")
    assert code == 1 and out == ""
    assert f"no token-key.pem in {tmp_path / 'nothing'}: start `meshctl serve --ca-dir" in err
    code, _, err = run_cli(capsys, "token", "web.default", "--ca-dir", str(tmp_path), "--ttl", "soon")
    assert code == 64 and "--ttl: 'soon' is not a duration" in err


@pytest.mark.parametrize(("flags", "message"), [
    (["--token", "a", "--token-file", "b"], "give the token once: --token-file or --token"),
    (["--ca-root-cert", "/nonexistent/root.pem"], "--ca-root-cert /nonexistent/root.pem: No such file or directory"),
    (["--secret-ttl", "0s"], "--secret-ttl: '0s' is shorter than 1s"),
    (["--xds-address", "nowhere"], "address 'nowhere' is not HOST:PORT"),
])  # fmt: skip
def test_agent_refuses_bad_flags_before_starting_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           flags: list[str], message: str) -> None:
    root = tmp_path / "root.pem"
    root.write_text("placeholder")
    base = ["agent", "web.default", "--ca-root-cert", str(root), "--workdir", str(tmp_path / "work")]
    code, _, err = run_cli(capsys, *base, *flags)
    assert code == 64, err
    assert message in err
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize(("flags", "code", "message"), [
    (["--workload-cert-ttl", "0s"], 64, "--workload-cert-ttl: '0s' is shorter than 1s"),
    (["--ca-dir", "{partial}"], 1, "missing ca-key.pem"),
])  # fmt: skip
def test_serve_refuses_an_unusable_ca(tmp_path: Path, flags: list[str], code: int, message: str) -> None:
    (tmp_path / "mesh").mkdir()
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "ca-cert.pem").write_text("x")
    argv = [sys.executable, "-m", "meshctl", "serve", "--config-dir", str(tmp_path / "mesh"), "--xds-address",
            "127.0.0.1:0", "--debug-address", "", "--ca-address", "127.0.0.1:0",
            *(flag.format(partial=partial) for flag in flags)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == code and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
