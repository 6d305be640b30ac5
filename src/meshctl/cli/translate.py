"""`meshctl translate`: the Envoy config Istio would give one proxy, rendered offline."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("translate")(translate)


def translate() -> int:
    """Render the Envoy config (listeners, routes, clusters, endpoints) of one proxy."""
    return 0
