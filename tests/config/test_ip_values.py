"""`is_ip` answers as Python's own parser does, though it parses only what has a colon."""

from __future__ import annotations

import ipaddress
import itertools

from hypothesis import given, strategies as st

from meshctl.config.values import is_ip


def _parses(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@given(st.text(alphabet="0123456789.:abfx %\n٣", max_size=24))
def test_is_ip_agrees_with_ipaddress(text: str) -> None:
    assert is_ip(text) == _parses(text)


def test_dotted_quads_with_edge_octets_agree_with_ipaddress() -> None:
    octets = ["0", "00", "01", "9", "99", "099", "100", "199", "249", "255", "256", "300", "1000"]
    for parts in itertools.product(octets, repeat=4):
        text = ".".join(parts)
        assert is_ip(text) == _parses(text), text
    assert is_ip("reviews.default.svc.cluster.local") is False
    assert is_ip("fe80::1%eth0") is True
