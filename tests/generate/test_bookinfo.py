"""The classic Bookinfo topology from Deployments, as Istio's docs write it, through real Envoy."""

from __future__ import annotations

import json
import subprocess
import sys

from meshctl.generate.proxy import ProxyConfig

from testsupport import EXAMPLES, ROOT

TARGET = "deploy/productpage-v1.default"


def _vhost(config: ProxyConfig, name: str):
    (route_config,) = [r for r in config.routes if r.name == "9080"]
    return {vh.name: vh for vh in route_config.virtual_hosts}[name]


def test_canary_split_lands_in_weighted_clusters(bookinfo, config_for) -> None:
    reviews = _vhost(config_for(bookinfo, TARGET), "reviews.default.svc.cluster.local:9080")
    jason, canary = reviews.routes
    assert jason.name == "jason" and jason.route.cluster == "outbound|9080|v2|reviews.default.svc.cluster.local"
    weights = [(c.name, c.weight.value) for c in canary.route.weighted_clusters.clusters]
    assert weights == [
        ("outbound|9080|v1|reviews.default.svc.cluster.local", 80),
        ("outbound|9080|v3|reviews.default.svc.cluster.local", 20),
    ]
    assert not canary.route.weighted_clusters.HasField("total_weight")
    assert canary.decorator.operation == "reviews:9080/*"


def test_fault_delay_and_abort_are_per_route_filter_config(bookinfo, config_for) -> None:
    from envoy.extensions.filters.http.fault.v3 import fault_pb2

    ratings = _vhost(config_for(bookinfo, TARGET), "ratings.default.svc.cluster.local:9080")
    delay, abort, rest = ratings.routes
    delay_fault, abort_fault = fault_pb2.HTTPFault(), fault_pb2.HTTPFault()
    delay.typed_per_filter_config["envoy.filters.http.fault"].Unpack(delay_fault)
    abort.typed_per_filter_config["envoy.filters.http.fault"].Unpack(abort_fault)
    assert delay_fault.delay.fixed_delay.seconds == 7
    assert (delay_fault.delay.percentage.numerator, delay_fault.delay.percentage.denominator) == (1_000_000, 2)
    assert not delay_fault.HasField("abort")
    assert abort_fault.abort.http_status == 555
    assert not abort_fault.HasField("delay")
    assert not rest.typed_per_filter_config


def test_deployment_replicas_get_stable_names_and_ips(bookinfo) -> None:
    first = bookinfo.proxy(TARGET)
    again = bookinfo.proxy(TARGET)
    assert first.id == again.id and first.ip == again.ip
    assert first.id.startswith("productpage-v1-") and first.id.endswith(".default")
    assert first.ip.startswith("10.244.")
    names = {w.name for w in bookinfo.registry.workloads}
    assert len(names) == 6


def test_bookinfo_translate_passes_envoy_validate() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meshctl", "translate", "-f", str(EXAMPLES / "bookinfo"), "--proxy", TARGET,
         "--validate", "-o", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "accepted" in done.stderr
    dump = json.loads(done.stdout)
    assert [c["@type"].rsplit(".", 1)[1] for c in dump["configs"]] == [
        "ClustersConfigDump", "EndpointsConfigDump", "ListenersConfigDump", "RoutesConfigDump",
    ]
