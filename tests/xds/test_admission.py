"""`meshctl serve --max-connections N`: stream N+1 is refused with a clear status, counted, and
the streams already open (a real Envoy carrying traffic) never notice."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import grpc
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from envoy_harness import RequestLoop
from hostile import ads_call, eds_request
from world import make_world

from meshctl.loopback import wait_until
from serve_process import ReadyProbe, Serve


def test_streams_beyond_the_limit_are_refused_and_counted(tmp_path: Path, backends: Any, envoys: Any,
                                                          processes: Any) -> None:
    world = make_world(tmp_path, backends, envoys, processes, pods=("web", "intruder"), flags=("--max-connections", "2"))
    world.envoy()  # one ADS stream
    port = world.serve.xds_port
    holder = threading.Thread(target=lambda: ads_call(port, [eds_request("intruder", ["x"])], responses=99, timeout=2))
    with RequestLoop(world.url) as loop, ReadyProbe(world.serve) as probe:
        holder.start()  # the second stream, held open
        wait_until(lambda: "meshctl_xds_open_streams 2" in world.serve.open("/metrics").read().decode(), 5,
                   what="two streams open")
        refused = ads_call(port, [eds_request("intruder", ["x"])])
        assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.details == ("meshctl serve has 2 streams open, its limit (--max-connections 2); "
                                   "retry later or raise the limit")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(channel)
            try:
                stub.FetchClientStatus(csds_pb2.ClientStatusRequest(), timeout=5)
                raise AssertionError("CSDS was admitted beyond the limit")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        holder.join(10)  # its deadline ends it
        wait_until(lambda: "meshctl_xds_open_streams 1" in world.serve.open("/metrics").read().decode(), 5,
                   what="the held stream closed")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:  # room again
            stub = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(channel)
            assert [c.node.id for c in stub.FetchClientStatus(csds_pb2.ClientStatusRequest(), timeout=5).config] \
                == ["web.default"]
        loop.wait_for_body("x", count=5)
    assert not loop.failures, loop.failures[:5]
    probe.check()
    metrics = world.serve.open("/metrics").read().decode()
    assert 'meshctl_xds_refused_streams_total{service="ADS"} 1' in metrics
    assert 'meshctl_xds_refused_streams_total{service="CSDS"} 1' in metrics


def test_max_connections_below_one_is_a_usage_error(tmp_path: Path, processes: Any) -> None:
    import subprocess

    serve = Serve(tmp_path, processes, tmp_path / "log")
    done = subprocess.run(serve.argv("--max-connections", "0"), env=serve.env(), capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 64 and "--max-connections must be at least 1, not 0" in done.stderr
