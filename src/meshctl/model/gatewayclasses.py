"""The GatewayClasses of Istio's controllers: which controller a class name stands for, and the
classes Istio's controller makes when a cluster has none of that name.

Istio knows two classes out of the box (its defaults: no ambient, multi-network discovery of
Gateway API gateways on): `istio`, whose Gateways it deploys and programs
(`istio.io/gateway-controller`), and `istio-remote`, gateways of another cluster that it only
acknowledges (`istio.io/unmanaged-gateway`). It creates each one that is missing, with its
description, and never touches one that exists: a user may change or replace it, and one that
is deleted comes back. A class name with no object still means its built-in controller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshctl.config.kinds import gatewayapi as api
from meshctl.config.resource import Resource

__all__ = [
    "BUILTIN_CLASSES",
    "CONTROLLERS",
    "ISTIO_CLASS",
    "ISTIO_CONTROLLER",
    "REMOTE_CONTROLLER",
    "BuiltinClass",
    "class_controller",
    "controllers_by_name",
    "missing_classes",
]

ISTIO_CLASS = "istio"
ISTIO_CONTROLLER = "istio.io/gateway-controller"
REMOTE_CONTROLLER = "istio.io/unmanaged-gateway"


@dataclass(frozen=True, slots=True)
class BuiltinClass:
    """A GatewayClass Istio makes: its name, controller and description."""

    name: str
    controller: str
    description: str

    def manifest(self, api_version: str) -> dict[str, Any]:
        """The object Istio creates: nothing but the name and the spec."""
        return {"apiVersion": api_version, "kind": "GatewayClass", "metadata": {"name": self.name},
                "spec": {"controllerName": self.controller, "description": self.description}}


BUILTIN_CLASSES = (
    BuiltinClass(ISTIO_CLASS, ISTIO_CONTROLLER, "The default Istio GatewayClass"),
    BuiltinClass("istio-remote", REMOTE_CONTROLLER, "Remote to this cluster. Does not deploy or affect configuration."),
)
_BUILTIN = {c.name: c.controller for c in BUILTIN_CLASSES}
CONTROLLERS = frozenset(_BUILTIN.values())
"""The controllers Istio answers for: it accepts their classes and reports on their Gateways."""


def class_controller(name: str, controllers: Mapping[str, str]) -> str:
    """The controller of Istio's that handles Gateways of class `name` (none: ""): the class
    object's when it names one of Istio's; else, as Istio falls back for a class it does not
    hold, the built-in class's of that name."""
    controller = controllers.get(name, "")
    if controller in CONTROLLERS:
        return controller
    return _BUILTIN.get(name, "")


def controllers_by_name(classes: Iterable[Resource]) -> dict[str, str]:
    """The controller of each GatewayClass object, by the class's name."""
    return {c.name: c.view_as(api.GatewayClass).controller_name for c in classes if c.kind == "GatewayClass"}


def missing_classes(resources: Iterable[Resource]) -> list[BuiltinClass]:
    """The built-in classes with no GatewayClass of their name among `resources`."""
    present = {r.name for r in resources if r.kind == "GatewayClass"}
    return [c for c in BUILTIN_CLASSES if c.name not in present]
