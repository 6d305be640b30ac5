"""meshctl's RBAC against Istio's own builder goldens: the cases of Istio's builder_test.go on
its inputs (data/istio_authz), each filter compared field by field with the expected filter.

The expected files were first written from Istio's goldens by hand and checked against them;
they follow current Istio where the stored goldens predate it (see data/istio_authz/README.md).
"""

from __future__ import annotations

import json

import pytest
import yaml
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from istio_authz_cases import DATA, HTTP_CASES, TCP_CASES, Case, lookup, policies
from meshctl.generate.authz import build_filters


def _as_data(message: Message) -> object:
    return json.loads(json_format.MessageToJson(message))


def _expected(path_kind: str, name: str, message: type[Message]) -> object:
    parsed = json_format.ParseDict(yaml.safe_load((DATA / path_kind / name).read_text()), message())
    return _as_data(parsed)


def _check(case: Case, kind: str, got: list[Message], message: type[Message]) -> None:
    assert [f.name for f in got] == [  # type: ignore[attr-defined]
        yaml.safe_load((DATA / kind / want).read_text())["name"] for want in case.want]
    for filter_, want in zip(got, case.want, strict=True):
        assert _as_data(filter_) == _expected(kind, want, message), f"{case.name}: {want}"


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.name for c in HTTP_CASES])
def test_http_filters_match_istio(case: Case) -> None:
    built = build_filters(policies(DATA / "http" / case.input), bundle=case.bundle, providers=case.providers,
                          lookup=lookup)
    _check(case, "http", [*built.http_custom, *built.http], hcm_pb2.HttpFilter)


@pytest.mark.parametrize("case", TCP_CASES, ids=[c.name for c in TCP_CASES])
def test_tcp_filters_match_istio(case: Case) -> None:
    built = build_filters(policies(DATA / "tcp" / case.input, custom=case.name == "custom-only-http"),
                          bundle=case.bundle, providers=case.providers, lookup=lookup)
    _check(case, "tcp", list(built.tcp), lc.Filter)


def test_a_bad_custom_provider_is_reported() -> None:
    case = next(c for c in HTTP_CASES if c.name == "custom-bad-invalid-config")
    built = build_filters(policies(DATA / "http" / case.input), bundle=case.bundle, providers=case.providers,
                          lookup=lookup)
    assert any("port must be in the range" in w and "unsupported statusOnError" in w for w in built.warnings)
