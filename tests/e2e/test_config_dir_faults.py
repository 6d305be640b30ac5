"""The watched directory misbehaving under a live mesh: real `meshctl serve` (real translator), a
real Envoy sidecar carrying a request loop, and the config directory replaced, swapped, updated
the way kubelet updates a ConfigMap volume, truncated, made unreadable or deleted.

Every test holds serve to the same promise: no request fails and every answer comes from the
version the config routes to (reviews-v1) until the test makes a deliberate change (to
reviews-v3), which Envoy then follows; serve stays up and `/ready` answers within 100 ms
throughout. Serve runs without the capabilities that let root ignore file permissions
(tests/privileges.py), so an unreadable directory is unreadable to it even in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from envoy_harness import RequestLoop, wait_until
from privileges import bound_by_permissions

from meshctl.demo.mesh import SERVICE_PORT, routing_yaml
from meshctl.demo.runtime import LocalMesh

V1, V3 = "reviews-v1", "reviews-v3"
READY_WITHIN = 0.1


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[LocalMesh]:
    with LocalMesh(tmp_path, client_names=("productpage",), serve_preexec=bound_by_permissions) as running:
        yield running


@contextmanager
def live(mesh: LocalMesh) -> Iterator[RequestLoop]:
    """Traffic through the sidecar and probes of serve's `/ready` while the test breaks things."""
    client = mesh.layout.clients[0]
    traffic = RequestLoop(f"http://{client.bind}:{SERVICE_PORT}/reviews/0", headers={"Host": "reviews"})
    ready = RequestLoop(f"http://127.0.0.1:{mesh.debug_port}/ready", interval=0.02)
    with traffic, ready:
        traffic.wait_for_body(V1)
        yield traffic
    assert mesh.serve is not None and mesh.serve.poll() is None, "serve exited"
    assert not traffic.failures, traffic.failures[:5]
    assert set(traffic.bodies()) <= {V1, V3}, traffic.bodies()
    assert ready.results and all(result == (200, "ready\n") for result in ready.results), set(ready.results)
    assert max(ready.latencies) < READY_WITHIN, f"/ready took {max(ready.latencies) * 1e3:.0f} ms"


def holds(traffic: RequestLoop, body: str = V1, count: int = 30) -> None:
    """`count` more answers arrive, and every one of them comes from `body`."""
    sent = len(traffic.results)
    wait_until(lambda: len(traffic.results) >= sent + count, 10, what=f"{count} more requests")
    assert {answer for answer in traffic.results[sent:]} == {(200, body)}


def refused(mesh: LocalMesh, text: str) -> list[str]:
    """serve's `/debug/configz` lists a refusal containing `text` (returns the problems)."""
    def problems() -> list[str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{mesh.debug_port}/debug/configz", timeout=2) as response:
            configz: dict[str, Any] = json.load(response)
        return [problem for entry in configz["rejected"] for problem in entry["problems"] if text in problem]
    return wait_until(problems, 10, what=f"configz to report {text!r}")


def contents(config_dir: Path, version: str = "v3") -> dict[str, str]:
    """The directory's files, with the routing sending everyone else to `version`."""
    files = {path.name: path.read_text() for path in config_dir.iterdir()
             if path.is_file() and not path.name.startswith(".")}
    return {**files, "routing.yaml": routing_yaml({version: 100})}


def followed(mesh: LocalMesh, traffic: RequestLoop) -> None:
    """The watch follows the directory now at the path: an edit there reaches Envoy."""
    (mesh.config_dir / "routing.yaml").write_text(routing_yaml({"v1": 100}))
    traffic.wait_for_body(V1)


def test_directory_replaced_by_rm_mkdir_cp(mesh: LocalMesh) -> None:
    with live(mesh) as traffic:
        files = contents(mesh.config_dir)
        shutil.rmtree(mesh.config_dir)
        mesh.config_dir.mkdir()
        holds(traffic)  # an empty new directory is not a config yet
        for name, text in files.items():
            (mesh.config_dir / name).write_text(text)
        traffic.wait_for_body(V3)
        followed(mesh, traffic)


def test_directory_swapped_by_mv(mesh: LocalMesh) -> None:
    with live(mesh) as traffic:
        new = mesh.workdir / "mesh.new"
        new.mkdir()
        for name, text in contents(mesh.config_dir).items():
            (new / name).write_text(text)
        mesh.config_dir.rename(mesh.workdir / "mesh.old")
        new.rename(mesh.config_dir)
        traffic.wait_for_body(V3)
        followed(mesh, traffic)


def test_vanished_directory_keeps_the_last_good_config(mesh: LocalMesh) -> None:
    with live(mesh) as traffic:
        files = contents(mesh.config_dir)
        shutil.rmtree(mesh.config_dir)
        refused(mesh, "the config directory is missing; the last good config keeps serving")
        holds(traffic)
        mesh.config_dir.mkdir()
        for name, text in files.items():
            (mesh.config_dir / name).write_text(text)
        traffic.wait_for_body(V3)
        followed(mesh, traffic)


def configmap_update(volume: Path, files: dict[str, str], generation: int) -> None:
    """What kubelet's atomic writer does to a ConfigMap volume: the files in a new hidden
    directory, `..data` re-pointed by renaming a new symlink over it, a visible symlink into
    `..data` per file (replacing whatever was there), the previous directory removed."""
    data = volume / "..data"
    previous = os.readlink(data) if data.is_symlink() else None
    current = volume / f"..2024_05_01_10_00_0{generation}.{generation}"
    current.mkdir()
    for name, text in files.items():
        (current / name).write_text(text)
    (volume / "..data_tmp").symlink_to(current.name)
    os.replace(volume / "..data_tmp", data)
    for name in files:
        if not (volume / name).is_symlink():
            (volume / f"..{name}.link").symlink_to(f"..data/{name}")
            os.replace(volume / f"..{name}.link", volume / name)
    if previous:
        shutil.rmtree(volume / previous)


def test_configmap_volume_update_is_applied(mesh: LocalMesh) -> None:
    with live(mesh) as traffic:
        files = {name: text for name, text in contents(mesh.config_dir, "v1").items()}
        configmap_update(mesh.config_dir, files, 1)
        holds(traffic)
        assert (mesh.config_dir / "routing.yaml").is_symlink()
        configmap_update(mesh.config_dir, {**files, "routing.yaml": routing_yaml({"v3": 100})}, 2)
        traffic.wait_for_body(V3)


def test_truncated_write_keeps_the_last_good_content(mesh: LocalMesh) -> None:
    routing = mesh.config_dir / "routing.yaml"
    with live(mesh) as traffic:
        routing.write_text("")
        refused(mesh, "routing.yaml: file is empty; its last good version keeps serving")
        holds(traffic)
        routing.write_text(routing_yaml({"v3": 100}))
        traffic.wait_for_body(V3)


def test_unreadable_file_keeps_the_last_good_content(mesh: LocalMesh) -> None:
    routing = mesh.config_dir / "routing.yaml"
    with live(mesh) as traffic:
        routing.chmod(0)
        refused(mesh, "routing.yaml: cannot read: Permission denied; its last good version keeps serving")
        holds(traffic)
        routing.write_text(routing_yaml({"v3": 100}))
        routing.chmod(0o644)
        traffic.wait_for_body(V3)


def test_unreadable_subdirectory_is_not_a_deletion(mesh: LocalMesh) -> None:
    routes = mesh.config_dir / "routes"
    routes.mkdir()
    (mesh.config_dir / "routing.yaml").rename(routes / "routing.yaml")
    # The move is applied (after the grace that tells a removal from `rm -rf`) before the test
    # makes its new directory unreadable.
    moved = f'msg="file removed" file={mesh.config_dir / "routing.yaml"}'
    wait_until(lambda: moved in (mesh.workdir / "serve.log").read_text(), 10, what="the move to be applied")
    with live(mesh) as traffic:
        routes.chmod(0)
        refused(mesh, "routes: cannot read directory (Permission denied); the last good version of its files "
                      "keeps serving")
        holds(traffic)
        routes.chmod(0o755)
        (routes / "routing.yaml").write_text(routing_yaml({"v3": 100}))
        traffic.wait_for_body(V3)


def test_a_deleted_file_is_logged_as_removed(mesh: LocalMesh) -> None:
    """Removing a refused file used to be logged as "file accepted again"."""
    bad = mesh.config_dir / "bad.yaml"
    with live(mesh) as traffic:
        bad.write_text(routing_yaml({"v3": 100}).replace("name: reviews", "name: Bad_Name"))
        refused(mesh, "invalid name 'Bad_Name'")
        bad.unlink()
        wait_until(lambda: "file removed" in (mesh.workdir / "serve.log").read_text(), 10, what="the removal logged")
        holds(traffic)
    log = (mesh.workdir / "serve.log").read_text()
    assert f'msg="file removed" file={bad}' in log and "accepted again" not in log, log[-2000:]
