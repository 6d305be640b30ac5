"""`explain -f` translates only what the request reaches (`ProxyParts`): its answers must be the
whole translation's, for every pod of the examples with sidecars (the others hold gateways, translated whole, or no
pods) and every service port it can call, out and
in, with and without the header the examples route on. (explain_support compares the two on
every request of the other explain tests too.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from explain_support import whole_translation
from meshctl.explain.engine import explain
from meshctl.explain.request import Direction, parse_request
from meshctl.explain.sources import from_inputs, load_inputs
from meshctl.explain.view import PartsView
from meshctl.model.service import POD

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example", [EXAMPLES / "bookinfo", EXAMPLES / "seed-reviews"], ids=lambda path: path.name)
def test_parts_answer_as_the_whole_translation(example: Path) -> None:
    files = [str(example)]
    snapshot = load_inputs(files, "default").snapshot
    pods = [w.proxy_id for w in snapshot.registry.workloads if w.kind == POD]
    calls = [(f"http://{service.hostname}:{port.port}/", headers, direction)
             for service in snapshot.registry.services for port in service.ports
             for headers in ((), ("end-user: jason",)) for direction in Direction]
    assert pods and calls
    for pod in pods:
        parts, whole = from_inputs(files, pod, "default"), whole_translation(files, pod)
        assert isinstance(parts.view, PartsView)
        for url, headers, direction in calls:
            request = parse_request(url, headers=headers, direction=direction)
            expected = explain(whole.view, request, whole.provenance, whole.resolver).data()
            assert explain(parts.view, request, parts.provenance, parts.resolver).data() == expected, (pod, url)
        assert set(parts.view.warnings()) <= set(whole.view.warnings())
