"""Which workloads carry a sidecar: the pod decides first, then its namespace."""

from __future__ import annotations

import pytest

from meshctl.model.injection import InjectionPolicy

POLICY = InjectionPolicy({
    "on": {"istio-injection": "enabled"},
    "revision": {"istio.io/rev": "canary"},
    "off": {"istio-injection": "disabled"},
    "plain": {},
})


@pytest.mark.parametrize(("namespace", "labels", "annotations", "injected"), [
    ("on", {}, {}, True),
    ("revision", {}, {}, True),
    ("off", {}, {}, False),
    ("plain", {}, {}, False),
    ("absent", {}, {}, True),
    ("off", {"sidecar.istio.io/inject": "true"}, {}, True),
    ("on", {"sidecar.istio.io/inject": "false"}, {}, False),
    ("on", {}, {"sidecar.istio.io/inject": "false"}, False),
    ("on", {"sidecar.istio.io/inject": "true"}, {"sidecar.istio.io/inject": "false"}, True),
    ("off", {}, {"sidecar.istio.io/status": "{}"}, True),
    ("on", {"security.istio.io/tlsMode": "disabled"}, {"sidecar.istio.io/status": "{}"}, False),
    ("off", {"security.istio.io/tlsMode": "istio"}, {"sidecar.istio.io/inject": "false"}, True),
], ids=["namespace-label", "namespace-revision", "namespace-disabled", "namespace-unlabelled",
        "namespace-not-in-input", "pod-label-over-namespace", "pod-label-opts-out", "pod-annotation-opts-out",
        "label-over-annotation", "already-injected", "tls-mode-decides-first", "tls-mode-over-inject"])
def test_injection(namespace: str, labels: dict[str, str], annotations: dict[str, str], injected: bool) -> None:
    assert POLICY.injected(namespace, labels, annotations) is injected
