"""TPROXY interception: the virtual listeners keep original addresses (translation-spec §2.1,
§2.7), and inbound connections to the app keep the caller's address (`original_src`, mark 1337,
which istio-iptables' TPROXY rules route back to Envoy)."""

from __future__ import annotations

from envoy.extensions.filters.listener.original_src.v3 import original_src_pb2


def test_tproxy_makes_virtual_listeners_transparent_and_keeps_the_source(client_config) -> None:
    listeners = {listener.name: listener for listener in client_config(interception="TPROXY").listeners}
    inbound, outbound = listeners["virtualInbound"], listeners["virtualOutbound"]
    assert inbound.transparent.value and outbound.transparent.value
    names = [f.name for f in inbound.listener_filters]
    assert names[:2] == ["envoy.filters.listener.original_dst", "envoy.filters.listener.original_src"]
    original_src = original_src_pb2.OriginalSrc()
    inbound.listener_filters[1].typed_config.Unpack(original_src)
    assert original_src.mark == 1337


def test_redirect_listeners_are_not_transparent(client_config) -> None:
    listeners = {listener.name: listener for listener in client_config(interception="REDIRECT").listeners}
    assert not listeners["virtualInbound"].HasField("transparent")
    assert not listeners["virtualOutbound"].HasField("transparent")
    assert "envoy.filters.listener.original_src" not in [f.name for f in listeners["virtualInbound"].listener_filters]
