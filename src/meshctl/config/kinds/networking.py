"""Schemas of Istio's networking kinds (placeholder: filled in by the schema work)."""

from meshctl.config.schema import Obj

VIRTUAL_SERVICE = Obj({}, open=True)
DESTINATION_RULE = Obj({}, open=True)
GATEWAY = Obj({}, open=True)
SERVICE_ENTRY = Obj({}, open=True)
SIDECAR = Obj({}, open=True)
WORKLOAD_ENTRY = Obj({}, open=True)
