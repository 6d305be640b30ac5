"""Schemas of Istio's security kinds (placeholder: filled in by the schema work)."""

from meshctl.config.schema import Obj

PEER_AUTHENTICATION = Obj({}, open=True)
AUTHORIZATION_POLICY = Obj({}, open=True)
REQUEST_AUTHENTICATION = Obj({}, open=True)
