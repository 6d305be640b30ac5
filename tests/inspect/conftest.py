"""Parsed dumps shared by the inspect tests (parsing the sidecar dump once saves seconds)."""

from __future__ import annotations

import pytest
from inspect_support import data

from meshctl.inspect.configdump import ConfigDump, parse_config_dump


@pytest.fixture(scope="session")
def sidecar() -> ConfigDump:
    return parse_config_dump(data("sidecar_dump.json"), "sidecar_dump.json")


@pytest.fixture(scope="session")
def gateway() -> ConfigDump:
    return parse_config_dump(data("gateway_dump_camel.json"), "gateway_dump_camel.json")
