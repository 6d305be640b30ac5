"""Validation that accepts what Istio accepts and refuses what Envoy would NACK: regexes by RE2's
rules, AuthorizationPolicy path templates as Istio documents them, and every field of the
current security API (trustDomains, notTrustDomains)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl.config.loader import load


def _problems(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "input.yaml"
    file.write_text(text)
    return [str(problem) for problem in load([str(file)], "default").problems]


def _route(regex: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: r, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - match: [{{uri: {{regex: '{regex}'}}}}]
    route: [{{destination: {{host: reviews}}}}]
"""


@pytest.mark.parametrize("regex", [r"/\pL+", r"/(?i)item", r"/[[:alpha:]]+", "/a{1000}", r"/\Q.*\E"])
def test_regexes_re2_accepts_are_valid(tmp_path: Path, regex: str) -> None:
    assert _problems(tmp_path, _route(regex)) == []


@pytest.mark.parametrize(("regex", "reason"), [
    ("/a{1001}", "invalid repetition size: {1001}"),
    ("/(?=x)", "invalid perl operator: (?="),
    (r"/(a)\1", r"invalid escape sequence: \1"),
    ("/a++", "bad repetition operator: ++"),
])
def test_regexes_re2_refuses_are_invalid(tmp_path: Path, regex: str, reason: str) -> None:
    (problem,) = _problems(tmp_path, _route(regex))
    assert problem.endswith(f"spec.http[0].match[0].uri.regex: invalid regex {regex!r}: {reason}")


def _policy(source: str = "", paths: str = "") -> str:
    rule = f"  - from: [{{source: {source}}}]\n" if source else f"  - to: [{{operation: {{paths: {paths}}}}}]\n"
    return f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: p, namespace: default}}
spec:
  rules:
{rule}"""


@pytest.mark.parametrize("paths", ["['/foo/{**}/']", "['/foo/{*}/bar/{**}']", "['/foo/{**}/bar']", "['/{*}']"])
def test_path_templates_istio_allows(tmp_path: Path, paths: str) -> None:
    assert _problems(tmp_path, _policy(paths=paths)) == []


@pytest.mark.parametrize(("paths", "reason"), [
    ("['/{**}/foo/{*}']", "'{**}' must be the last operator"),
    ("['/*/baz/{*}']", "segment '*' mixes text and wildcards"),
    ("['/foo/{*}.txt']", "segment '{*}.txt' mixes text and wildcards"),
    ("['/foo/{bar}/{*}']", "segment '{bar}' mixes text and wildcards"),
])
def test_path_templates_istio_refuses(tmp_path: Path, paths: str, reason: str) -> None:
    (problem,) = _problems(tmp_path, _policy(paths=paths))
    assert reason in problem


def test_trust_domains_are_part_of_the_source(tmp_path: Path) -> None:
    assert _problems(tmp_path, _policy(source="{trustDomains: [td1, '*.corp', 'corp*'], notTrustDomains: ['*']}")) == []
    (problem,) = _problems(tmp_path, _policy(source="{trustDomains: ['a*b']}"))
    assert "spec.rules[0].from[0].source.trustDomains[0]: 'a*b': a '*' may only stand at the start or the end" in problem
    (problem,) = _problems(tmp_path, _policy(source="{notTrustDomains: [td/ns]}"))
    assert "trust domain 'td/ns' must not contain '/'" in problem
