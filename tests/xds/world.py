"""A small live mesh for end-to-end tests: `meshctl serve` as a subprocess (fake translator) on a
config directory, backends x and y, and real Envoys for pod `web`, whose `backend` route the
test moves between x and y by rewriting files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy_harness import bootstrap, node_id, write_atomic
from serve_process import Serve

import fake_mesh
from meshctl.loopback import Envoy, NameServer, free_port, http_get, wait_until


@dataclass
class World:
    config: Path
    serve: Serve
    ports: dict[str, int]
    backends: dict[str, NameServer]
    start: Callable[[bootstrap_pb2.Bootstrap], Envoy]
    tmp: Path

    @property
    def url(self) -> str:
        return self.url_of("web")

    def url_of(self, pod: str) -> str:
        return f"http://127.0.0.1:{self.ports[pod]}/"

    def write_mesh(self, services: tuple[str, ...] = ("x", "y"), timeouts: Mapping[str, str] | None = None,
                   failing: Mapping[str, str] | None = None) -> None:
        """mesh.yaml: the pods (those in `failing` with that generation failure) and the given
        services (each with its backend's Endpoints)."""
        timeouts, failing = timeouts or {}, failing or {}
        documents = [fake_mesh.pod(name, port, "backend", fail=failing.get(name, "")) for name, port in self.ports.items()]
        for name in services:
            documents.extend(fake_mesh.service(name, self.backends[name].port, connect_timeout=timeouts.get(name, "")))
        write_atomic(self.config / "mesh.yaml", fake_mesh.dump_yaml(documents))

    def route(self, weights: dict[str, int]) -> None:
        write_atomic(self.config / "route.yaml", fake_mesh.dump_yaml([fake_mesh.virtual_service("backend", weights)]))

    def envoy(self, delta: bool = False, pod: str = "web") -> Envoy:
        """A sidecar for `pod`, once traffic through it reaches x."""
        envoy = self.start(bootstrap(node_id(pod), xds_port=self.serve.xds_port, admin_port=0, delta=delta))
        envoy.wait_live()
        wait_until(lambda: http_get(self.url_of(pod)) == (200, "x"), 10, what=f"traffic through {pod}'s Envoy to x")
        return envoy


def make_world(tmp_path: Path, backends: Any, envoys: Any, processes: Any, pods: tuple[str, ...] = ("web",),
               flags: tuple[str, ...] = ()) -> World:
    config = tmp_path / "config"
    config.mkdir()
    world = World(config, Serve(config, processes, tmp_path / "serve.log", flags=flags), {pod: free_port() for pod in pods},
                  {"x": backends("x"), "y": backends("y")}, envoys, tmp_path)
    world.write_mesh()
    world.route({"x": 100})
    world.serve.start()
    return world


def dynamic(dump: dict[str, Any], versions: bool = True) -> dict[str, list[Any]]:
    """The dynamic resources of an Envoy config dump, without timestamps (and versions, which
    differ by design between SotW, per type, and Delta, per resource)."""
    out: dict[str, list[Any]] = {"clusters": [], "listeners": [], "routes": [], "endpoints": []}
    for section in dump["configs"]:
        kind = section["@type"].rsplit(".", 1)[1]
        if kind == "ClustersConfigDump":
            out["clusters"] = [_strip(c, versions) for c in section.get("dynamic_active_clusters", [])]
        elif kind == "ListenersConfigDump":
            out["listeners"] = [_strip(c["active_state"], versions) for c in section.get("dynamic_listeners", [])]
        elif kind == "RoutesConfigDump":
            out["routes"] = [_strip(c, versions) for c in section.get("dynamic_route_configs", [])]
        elif kind == "EndpointsConfigDump":
            out["endpoints"] = [_strip(c, versions) for c in section.get("dynamic_endpoint_configs", [])]
    return {key: sorted(items, key=json.dumps) for key, items in out.items()}


def _strip(entry: dict[str, Any], versions: bool) -> dict[str, Any]:
    dropped = {"last_updated"} | (set() if versions else {"version_info"})
    return {k: v for k, v in entry.items() if k not in dropped}
