"""The CA tests' shared serve: one `meshctl serve --ca-address` per test module (ca_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ca_world import CaServe

from meshctl.loopback import Processes


@pytest.fixture(scope="module")
def ca_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaServe]:
    workdir = tmp_path_factory.mktemp("ca-serve")
    (workdir / "mesh").mkdir()
    with Processes() as processes:
        serve = CaServe(processes.start, workdir / "mesh", workdir / "ca", workdir / "serve.log",
                        extra=["--max-workload-cert-ttl", "48h"])
        serve.wait_ready()
        yield serve
