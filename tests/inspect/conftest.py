"""Parsed dumps shared by the inspect tests (parsing the sidecar dump once saves seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from inspect_support import data

from meshctl.inspect.configdump import ConfigDump, parse_config_dump


@pytest.fixture(scope="session")
def sidecar() -> ConfigDump:
    return parse_config_dump(data("sidecar_dump.json"), "sidecar_dump.json")


@pytest.fixture(scope="session")
def gateway() -> ConfigDump:
    return parse_config_dump(data("gateway_dump_camel.json"), "gateway_dump_camel.json")


@pytest.fixture(scope="module")
def proxy_config_cli() -> Iterator[None]:
    """meshctl's app with the `proxy-config` group, whether or not cli/__init__.py registers it
    yet; a registration made here is taken back so other tests see the app unchanged."""
    import meshctl.cli
    from meshctl.cli import proxy_config

    groups = meshctl.cli.app.registered_groups
    before = list(groups)
    if "proxy-config" not in {info.name for info in groups}:
        proxy_config.register(meshctl.cli.app)
    yield
    groups[:] = before
