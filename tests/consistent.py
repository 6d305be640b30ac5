"""The snapshot consistency check (meshctl.resources.consistency) as a test assertion, with the
secrets an Istio sidecar's node agent serves: run on every config the translation tests generate."""

from __future__ import annotations

from meshctl.model.secrets import agent_serves
from meshctl.resources import ProxyResources
from meshctl.resources.consistency import problems


def assert_consistent(resources: ProxyResources, what: str = "") -> None:
    """Fail, listing every dangling name, unless the resources refer only to each other."""
    found = problems(resources, agent_serves)
    assert not found, f"inconsistent resources{' for ' + what if what else ''}:\n" + "\n".join(found)
