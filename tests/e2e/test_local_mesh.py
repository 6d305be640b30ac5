"""The real translator through `meshctl serve` to real Envoy sidecars, with real HTTP traffic.

The demo's mesh (meshctl.demo): reviews v1-v3 as loopback HTTP servers, two client sidecars
running with interception mode NONE on addresses of their own, configs in a watched directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from meshctl.demo.mesh import Client
from meshctl.demo.runtime import LocalMesh, request
from meshctl.loopback import wait_until

JASON = {"end-user": "jason"}


@pytest.fixture(params=["sotw", "delta"])
def mesh(request: pytest.FixtureRequest, tmp_path: Path):
    with LocalMesh(tmp_path, delta=request.param == "delta") as running:
        yield running


def test_header_routing_on_every_sidecar(mesh: LocalMesh) -> None:
    for client in mesh.layout.clients:
        assert mesh.sample(client, 15, JASON) == {"reviews-v2": 15}
        assert mesh.sample(client, 15) == {"reviews-v1": 15}


def test_weighted_split_holds_over_hundreds_of_requests(mesh: LocalMesh) -> None:
    client = mesh.layout.clients[1]
    mesh.write_routing({"v1": 80, "v3": 20})
    wait_for_answer(client, "reviews-v3")
    counts = mesh.sample(client, 400)
    assert set(counts) == {"reviews-v1", "reviews-v3"}, counts
    share = counts["reviews-v3"] / 400
    assert 0.13 <= share <= 0.27, f"expected ~20% v3 (±7 points, > 3 sigma), got {share:.1%}: {counts}"


def test_route_shifts_back_and_forth_without_a_single_failed_request(mesh: LocalMesh) -> None:
    client = mesh.layout.clients[0]
    answers: Counter[str] = Counter()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            status, body = request(client.bind)
            answers[body if status == 200 else f"HTTP {status}"] += 1

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        for target in ("v3", "v1", "v3", "v1"):
            sent = sum(answers.values())
            mesh.write_routing({target: 100})
            wait_for_answer(client, f"reviews-{target}")
            # Keep traffic flowing across each shift, not only up to it.
            wait_until(lambda: sum(answers.values()) >= sent + 25, 10, what="25 requests after the shift")
    finally:
        stop.set()
        worker.join(10)
    assert set(answers) == {"reviews-v1", "reviews-v3"}, f"non-2xx answers seen: {answers}"
    assert sum(answers.values()) >= 100


def test_sidecars_hold_exactly_what_translate_renders(mesh: LocalMesh, tmp_path: Path) -> None:
    """serve and translate share one generator: Envoy's dynamic routes equal translate's."""
    envoy = mesh.envoys[0]
    live = json.loads(envoy.admin("config_dump?resource=dynamic_route_configs"))
    rendered = subprocess.run(
        [sys.executable, "-m", "meshctl", "translate", "-f", str(mesh.config_dir), "--proxy",
         f"{envoy.name}.default", "--type", "routes", "-o", "json"], capture_output=True, text=True, check=True,
    )
    expected = json.loads(rendered.stdout)["configs"][0]["dynamic_route_configs"]
    assert [_route_config(e) for e in live["configs"]] == [_route_config(e) for e in expected]


def _route_config(entry: dict) -> dict:
    config = dict(entry["route_config"])
    config.pop("@type", None)
    return config


def wait_for_answer(client: Client, body: str) -> None:
    wait_until(lambda: request(client.bind)[1] == body, 10, what=f"{body} through {client.pod}")
