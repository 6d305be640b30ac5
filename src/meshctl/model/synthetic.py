"""What a cluster would have filled in, made up deterministically for offline input.

Offline input rarely has Pods with IPs: the registry gives each Deployment replica the name a
ReplicaSet would (`<deployment>-<template hash>-<suffix>`) and an address from the pod network,
and a Service without a clusterIP an address from the service network. Every value comes from a
hash of the object's identity, never from a counter or a clock, so the same files give the same
Envoy config on every run and on every machine.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable

__all__ = ["POD_NETWORK", "SERVICE_NETWORK", "AddressPool", "owner_of", "replica_name", "template_hash"]

POD_NETWORK = ipaddress.IPv4Network("10.244.0.0/16")
SERVICE_NETWORK = ipaddress.IPv4Network("10.96.0.0/16")

# Kubernetes' alphabet for generated name suffixes: no vowels, no look-alikes (0/o, 1/l).
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_REPLICA_NAME = re.compile(r"^(?P<owner>.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$")


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("/".join(parts).encode(), digest_size=8).digest(), "big")


def _suffix(value: int, length: int) -> str:
    letters = []
    for _ in range(length):
        value, index = divmod(value, len(_SAFE_ALPHABET))
        letters.append(_SAFE_ALPHABET[index])
    return "".join(letters)


def template_hash(namespace: str, deployment: str) -> str:
    """The `pod-template-hash` label a Deployment's ReplicaSet would carry."""
    return _suffix(_digest("template", namespace, deployment), 10)


def replica_name(namespace: str, deployment: str, index: int) -> str:
    """The name of replica `index` of a Deployment, as its ReplicaSet would name the pod."""
    suffix = _suffix(_digest("replica", namespace, deployment, str(index)), 5)
    return f"{deployment}-{template_hash(namespace, deployment)}-{suffix}"


def owner_of(pod_name: str) -> str:
    """The Deployment a pod named like a replica belongs to; other pods own themselves."""
    match = _REPLICA_NAME.match(pod_name)
    return match.group("owner") if match else pod_name


class AddressPool:
    """Deterministic addresses from a network: a hash picks the slot, collisions probe onward.

    Addresses the input already uses are `taken` first, so a made-up address never collides
    with a real one.
    """

    def __init__(self, network: ipaddress.IPv4Network, taken: Iterable[str] = ()) -> None:
        self.base = int(network.network_address)
        self.size = network.num_addresses - 2
        self.used = set(taken)

    def allocate(self, *key: str) -> str:
        slot = _digest(*key) % self.size
        while True:
            address = str(ipaddress.IPv4Address(self.base + 1 + slot))
            if address not in self.used:
                self.used.add(address)
                return address
            slot = (slot + 1) % self.size
