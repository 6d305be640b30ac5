"""Clients that misbehave on purpose: huge or malformed ADS requests, hostile CSDS matchers,
connections held open. Each is a plain blocking gRPC client (run them on threads), and reports
how its call ended rather than raising, so a test can check what serve answered."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from envoy_harness import node_id

from meshctl.resources import ENDPOINT

_requests = itertools.count()


@dataclass
class Outcome:
    """How a call ended: the responses read, and the status when it failed."""

    responses: list[discovery_pb2.DiscoveryResponse]
    code: grpc.StatusCode | None = None
    details: str = ""


def names(count: int, length: int = 32) -> list[str]:
    """`count` distinct names of `length` characters (or a few more) that no config defines."""
    batch = next(_requests)
    return [f"hostile-{batch}-{i}.".ljust(length, "x") for i in range(count)]


def eds_request(pod: str, resource_names: list[str]) -> discovery_pb2.DiscoveryRequest:
    request = discovery_pb2.DiscoveryRequest(type_url=ENDPOINT, resource_names=resource_names)
    request.node.id = node_id(pod)
    request.node.metadata.update({"NAMESPACE": "default"})
    return request


ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"


def ads_call(port: int, requests: list[discovery_pb2.DiscoveryRequest | bytes], *, responses: int = 1,
             timeout: float = 10.0) -> Outcome:
    """Send `requests` (messages, or their bytes: a test sending one huge request many times
    encodes it once) on one SotW ADS stream, keep it open (as Envoy does) and read up to
    `responses` responses."""
    received: list[discovery_pb2.DiscoveryResponse] = []
    done = threading.Event()
    encoded = [r if isinstance(r, bytes) else r.SerializeToString() for r in requests]

    def send() -> Iterator[bytes]:
        yield from encoded
        done.wait(timeout)

    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        method = channel.stream_stream(ADS_METHOD, request_serializer=None,
                                       response_deserializer=discovery_pb2.DiscoveryResponse.FromString)
        call = method(send(), timeout=timeout)
        try:
            for response in call:
                received.append(response)
                if len(received) >= responses:
                    break
        except grpc.RpcError as exc:
            return Outcome(received, exc.code(), exc.details() or "")
        finally:
            done.set()
            call.cancel()
    return Outcome(received)
