"""A generator that fails for one proxy names the input objects it was translating; a resource a
proxy rejects is traced to the objects it was made from.

serve reports a generation failure with the object that caused it (FILE:LINE: Kind ns/name). The
failures here are translator bugs injected by patching a generator function in the test: the
input itself is valid (the seed example), so only the attribution is under test.
"""

from __future__ import annotations

from typing import Any

import pytest

from meshctl.config.loader import load
from meshctl.errors import GenerationError
from meshctl.generate import httproute, policy
from meshctl.generate.translator import Translator
from meshctl.model.node import minimal_node
from meshctl.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from testsupport import EXAMPLES

SEED = EXAMPLES / "seed-reviews"
PRODUCTPAGE = minimal_node("productpage-v1-7d9f6b8c5-abcde.default")


def _generation() -> Any:
    result = load([str(SEED)], "default")
    assert not result.problems
    return Translator()(result.resources)


def _boom(*args: object, **kwargs: object) -> None:
    raise OverflowError("Value out of range: 18446744073709551616")


def test_a_failure_building_clusters_names_the_destination_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    original = policy.apply_connection_pool

    def overflow_on_a_pool(cluster: Any, options: Any, pool: Any, *rest: Any) -> None:
        if pool is not None:  # only the DestinationRule sets one: the bug is in reading it
            _boom()
        original(cluster, options, pool, *rest)

    monkeypatch.setattr(policy, "apply_connection_pool", overflow_on_a_pool)
    with pytest.raises(GenerationError) as raised:
        _generation().resources_for(PRODUCTPAGE)
    assert str(raised.value) == "OverflowError: Value out of range: 18446744073709551616"
    assert raised.value.culprits == (f"{SEED / 'reviews.yaml'}:24: DestinationRule default/reviews-destination",)


def test_a_failure_building_routes_names_the_virtual_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httproute, "build_route", _boom)
    with pytest.raises(GenerationError) as raised:
        _generation().resources_for(PRODUCTPAGE)
    assert raised.value.culprits == (f"{SEED / 'reviews.yaml'}:3: VirtualService default/reviews-route",)


def test_a_failure_outside_any_object_names_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from meshctl.generate import proxy

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("inbound listeners")

    monkeypatch.setattr(proxy, "build_inbound_listeners", broken)
    with pytest.raises(GenerationError) as raised:
        _generation().resources_for(PRODUCTPAGE)
    assert str(raised.value) == "RuntimeError: inbound listeners" and raised.value.culprits == ()


def test_a_rejected_resource_is_traced_to_the_objects_it_was_made_from() -> None:
    generation = _generation()
    resources = generation.resources_for(PRODUCTPAGE)
    reviews = SEED / "reviews.yaml"
    v2 = resources[CLUSTER]["outbound|9080|v2|reviews.default.svc.cluster.local"]
    assert generation.origins(v2) == [f"{reviews}:24: DestinationRule default/reviews-destination",
                                      f"{SEED / 'workloads.yaml'}:2: Service default/reviews"]
    routes = resources[ROUTE]["9080"]
    assert generation.origins(routes) == [f"{reviews}:3: VirtualService default/reviews-route"]
    assignment = resources[ENDPOINT]["outbound|9080|v1|reviews.default.svc.cluster.local"]
    assert generation.origins(assignment) == [f"{SEED / 'workloads.yaml'}:2: Service default/reviews"]
    [listener] = [p for name, p in resources[LISTENER].items() if name == "virtualOutbound"]
    assert generation.origins(listener) == []
