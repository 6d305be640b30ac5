"""Who is on the other end of a stream, as the server needs to know it: a plug-in.

The server keys status answers and debug queries by a node's identity, lists proxies but not
the clients that only ask questions, and refuses nodes whose ids break the naming rules. Those
rules belong to the mesh, not the transport, so the server is given them (as go-control-plane's
server is given a `NodeHash`); meshctl serve gives it Istio's (meshctl.model.node.ISTIO_NODES),
which meet these protocols by shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from envoy.config.core.v3 import base_pb2 as core_pb2

from meshctl.peer import PEER_IDENTITY

__all__ = ["Identity", "NodeIdentity", "with_peer_identity"]


def with_peer_identity(node: core_pb2.Node, identity: str) -> core_pb2.Node:
    """`node` as the translator sees it: PEER_IDENTITY set to what the transport proved (and
    removed when it proved nothing), whatever the client sent."""
    out = core_pb2.Node()
    out.CopyFrom(node)
    if PEER_IDENTITY in out.metadata.fields:
        del out.metadata.fields[PEER_IDENTITY]
    if identity:
        out.metadata.fields[PEER_IDENTITY].string_value = identity
    return out


class Identity(Protocol):
    """What the server knows of one node."""

    @property
    def key(self) -> str:
        """The id status answers and debug queries know the node by (istioctl's `POD.NS`)."""

    @property
    def proxy(self) -> bool:
        """A proxy to list in status answers, rather than a client that only asks questions."""

    @property
    def shown(self) -> Mapping[str, str]:
        """Node metadata that status answers show."""

    @property
    def refusal(self) -> str:
        """Why the node may not subscribe to resources (its id breaks the rules); empty if it may."""


class NodeIdentity(Protocol):
    """The naming rules the server is given."""

    def identify(self, node: core_pb2.Node) -> Identity:
        """Who `node` is; never raises (a node to refuse gets a `refusal`), so that a client
        asking only debug questions may use any id."""

    def stand_in(self, key: str) -> core_pb2.Node:
        """The node the proxy `key` would present, to answer questions about one not connected."""
