"""What offline input leaves out, made up the way a cluster would and the same on every run."""

from __future__ import annotations

import ipaddress
import re

from meshctl.model.synthetic import (
    POD_NETWORK,
    AddressPool,
    owner_of,
    replica_name,
    template_hash,
)


def test_replicas_are_named_as_a_replica_set_names_its_pods() -> None:
    names = [replica_name("default", "reviews-v1", index) for index in range(3)]
    hash_ = template_hash("default", "reviews-v1")
    assert all(re.fullmatch(rf"reviews-v1-{hash_}-[bcdfghjklmnpqrstvwxz2456789]{{5}}", name) for name in names)
    assert len(set(names)) == 3
    assert names == [replica_name("default", "reviews-v1", index) for index in range(3)]
    assert template_hash("other", "reviews-v1") != hash_


def test_the_owner_of_a_replica_is_its_deployment_and_other_pods_own_themselves() -> None:
    assert owner_of(replica_name("default", "reviews-v1", 0)) == "reviews-v1"
    assert owner_of("ratings") == "ratings"
    assert owner_of("web-0") == "web-0"


def test_the_pool_is_deterministic_and_probes_past_taken_addresses() -> None:
    first = AddressPool(POD_NETWORK).allocate("pod", "default", "a")
    assert AddressPool(POD_NETWORK).allocate("pod", "default", "a") == first
    moved = AddressPool(POD_NETWORK, taken=[first]).allocate("pod", "default", "a")
    assert moved == str(ipaddress.IPv4Address(first) + 1)


def test_the_pool_never_hands_out_an_address_twice_nor_the_network_or_broadcast_address() -> None:
    network = ipaddress.IPv4Network("10.0.0.0/29")
    pool = AddressPool(network)
    addresses = [pool.allocate("same") for _ in range(network.num_addresses - 2)]
    assert sorted(addresses, key=ipaddress.IPv4Address) == [str(host) for host in network.hosts()]
