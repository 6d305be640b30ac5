"""`meshctl explain --admin` on a real Envoy fed by `meshctl serve`: the same path and outcome
from what the Envoy holds as from the translation of the same files, traced back to them, and
the Envoy really routes where the explanation says.

The demo mesh's sidecars run with interception mode NONE, their outbound listener bound to an
address of their own, so the request is explained as sent to that address.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from meshctl.demo.runtime import LocalMesh
from testsupport import run_cli


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with LocalMesh(tmp_path_factory.mktemp("live"), client_names=("productpage",)) as running:
        yield running


def explain(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "explain", *argv, "-o", "json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def path_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["stage"], step["name"]) for step in data["steps"]]


@pytest.mark.parametrize(("headers", "backend"), [(["-H", "end-user: jason"], "reviews-v2"), ([], "reviews-v1")])
def test_live_envoy_answers_as_the_translation(mesh: LocalMesh, capsys: pytest.CaptureFixture[str],
                                               headers: list[str], backend: str) -> None:
    client = mesh.layout.clients[0]
    envoy = mesh.envoys[0]
    request = ["--url", "http://reviews:9080/reviews/0", *headers, "--address", client.bind]
    config = str(mesh.config_dir)
    translated = explain(capsys, f"{client.pod}.default", "-f", config, *request)
    live = explain(capsys, "--admin", envoy.admin_url, *request)
    traced = explain(capsys, f"{client.pod}.default", "--admin", envoy.admin_url, "-f", config, *request)

    assert path_of(live) == path_of(translated)
    assert live["outcome"] == translated["outcome"]
    assert live["proxy"] == f"{client.pod}.default"
    assert traced["steps"] == translated["steps"]
    route = [step for step in traced["steps"] if step["stage"] == "route"][0]
    assert route["sources"][0]["location"].startswith(f"{config}/routing.yaml:")
    subset = backend.split("-")[1]
    assert live["outcome"]["summary"].startswith(f"forwarded to outbound|9080|{subset}|reviews.default.svc.cluster.local")

    counts = mesh.sample(client, 5, dict(h.split(": ", 1) for h in headers[1::2]))
    assert counts == {backend: 5}, "the Envoy routes elsewhere than explained"


def test_live_envoy_asked_only_for_what_the_request_touches(mesh: LocalMesh, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from meshctl.inspect.acquire import AdminSource

    asked: list[str] = []
    original = AdminSource._request

    def record(self: AdminSource, method: str, path: str) -> bytes:
        asked.append(path)
        return original(self, method, path)

    monkeypatch.setattr(AdminSource, "_request", record)
    client = mesh.layout.clients[0]
    explain(capsys, "--admin", mesh.envoys[0].admin_url, "--url", "http://reviews:9080/", "--address", client.bind)
    # Envoy builds its whole dump for every /config_dump question: the node comes from
    # /server_info, the listeners' two lists in one question, the rest by name.
    assert asked[0] == "server_info", asked
    assert [path for path in asked if "listeners" in path] == ["config_dump?mask=dynamic_listeners,static_listeners"]
    by_name = [path for path in asked[1:] if "listeners" not in path]
    assert by_name and all(path.startswith("config_dump?resource=") and "&name_regex=" in path for path in by_name), asked
    # The route configuration named after the port was asked ahead, and that answer was used.
    assert [path for path in by_name if path.startswith("config_dump?resource=dynamic_route_configs&")] == [
        "config_dump?resource=dynamic_route_configs&name_regex=%5E9080%24"], asked
