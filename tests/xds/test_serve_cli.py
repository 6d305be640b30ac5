"""The `serve` command: flags, exit codes, the startup line, clean shutdown on signals."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from envoy_harness import bootstrap, node_id, write_atomic

from meshctl.loopback import free_port, http_get, wait_until
from serve_process import Serve

import fake_mesh


def _run(serve: Serve, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(serve.argv(*extra), env=serve.env(), capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--debounce-after", "soon"), "--debounce-after: 'soon' is not a duration"),
        (("--debounce-max", "-1s"), "--debounce-max: '-1s' is not a duration"),
        (("--log-format", "xml"), "--log-format must be logfmt or json"),
    ],
)
def test_bad_flags_exit_64(tmp_path: Path, processes: Any, flags: tuple[str, ...], message: str) -> None:
    done = _run(Serve(tmp_path, processes, tmp_path / "log"), *flags)
    assert done.returncode == 64 and message in done.stderr


def test_missing_config_dir_exits_64(tmp_path: Path, processes: Any) -> None:
    done = _run(Serve(tmp_path / "absent", processes, tmp_path / "log"))
    assert done.returncode == 64 and "does not exist" in done.stderr


def test_unloadable_translator_exits_1(tmp_path: Path, processes: Any) -> None:
    done = _run(Serve(tmp_path, processes, tmp_path / "log"), "--translator", "no_such_module:translate")
    assert done.returncode == 1 and "cannot load the translator no_such_module:translate" in done.stderr


def test_address_in_use_exits_1(tmp_path: Path, processes: Any) -> None:
    first = Serve(tmp_path, processes, tmp_path / "first.log").start()
    second = Serve(tmp_path, processes, tmp_path / "second.log")
    second.xds_port = first.xds_port
    done = _run(second)
    assert done.returncode == 1 and f"cannot listen for xDS on 127.0.0.1:{first.xds_port}" in done.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signal_stops_cleanly_with_a_proxy_connected(tmp_path: Path, processes: Any, envoys: Any,
                                                     signum: int, code: int) -> None:
    write_atomic(tmp_path / "mesh.yaml", fake_mesh.dump_yaml([fake_mesh.pod("web", free_port(), "backend"),
                                                              *fake_mesh.service("x", free_port())]))
    serve = Serve(tmp_path, processes, tmp_path / "serve.log")
    serve.process = processes(serve.argv("--log-format", "json"), env=serve.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: serve.process.poll() is None and http_get(serve.url("/ready"))[0] == 200, 10, what="serve ready")
    envoys(bootstrap(node_id("web"), xds_port=serve.xds_port, admin_port=free_port())).wait_live()
    wait_until(serve.synced, 10, what="the proxy SYNCED")
    serve.process.send_signal(signum)
    _, stderr = serve.process.communicate(timeout=10)
    text = stderr.decode()
    assert serve.process.returncode == code
    assert text.startswith(f"meshctl serve: xDS (ADS, CSDS) on 127.0.0.1:{serve.xds_port}, debug HTTP on 127.0.0.1:{serve.debug_port}")
    assert '"msg": "config accepted"' in text and '"msg": "stopped"' in text
    assert "Traceback" not in text and "CancelledError" not in text
