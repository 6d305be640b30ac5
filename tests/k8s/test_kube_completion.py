"""TAB completion from the cluster (the emulated API server, over real HTTP): running pods,
`deploy/` Deployments, namespaces and contexts, honouring -n, --context and -c on the line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from emulator import MeshEmulator
from seeds import BETA_NAMESPACE, add_deployment, add_pod

from meshctl.kube import quick


def tab(cache: Path, line: str) -> list[str]:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), _MESHCTL_COMPLETE="complete_bash", COMP_WORDS=line,
               COMP_CWORD=str(len(line.split()) if line.endswith(" ") else len(line.split()) - 1))
    done = subprocess.run([sys.executable, "-m", "meshctl"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    return done.stdout.split()


def test_targets_namespaces_and_contexts(emulator: MeshEmulator, kubeconfig: str, tmp_path: Path) -> None:
    add_pod(emulator, "reviews-v1-abc", labels={"app": "reviews"})
    add_pod(emulator, "reviews-v2-def", labels={"app": "reviews"})
    add_pod(emulator, "ratings-v1-ghi", phase="Pending")
    add_pod(emulator, "web-1", BETA_NAMESPACE)
    add_deployment(emulator, "reviews-v1", "default", {"matchLabels": {"app": "reviews"}})
    for namespace in ("default", BETA_NAMESPACE):
        emulator.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    tab(tmp_path, "meshctl ")
    c = f"-c {kubeconfig}"
    assert tab(tmp_path, f"meshctl pc clusters {c} ") == ["reviews-v1-abc", "reviews-v2-def"], "running pods only"
    assert tab(tmp_path, f"meshctl pc clusters {c} reviews-v2") == ["reviews-v2-def"]
    assert tab(tmp_path, f"meshctl ps {c} deploy/") == ["deploy/reviews-v1"]
    assert tab(tmp_path, f"meshctl pc routes {c} -n {BETA_NAMESPACE} ") == ["web-1"]
    assert tab(tmp_path, f"meshctl pc routes {c} --context beta ") == ["web-1"], "the context's namespace"
    assert tab(tmp_path, f"meshctl pc routes {c} -n ") == ["default", BETA_NAMESPACE]
    assert tab(tmp_path, f"meshctl ps {c} --context ") == ["alpha", "beta"]
    assert tab(tmp_path, f"meshctl translate {c} -n ") == [], "translate reads files, not the cluster"
    assert tab(tmp_path, f"meshctl pc clusters -c {tmp_path / 'none'} ") == [], "no cluster: nothing, no error"


def test_credentials_only_the_official_client_handles_are_left_to_it(
    emulator: MeshEmulator, kubeconfig: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exec plugin or inline client certificate is not something the quick reader runs or
    writes to disk: it hands over to the official client, which gets the same answer."""
    import yaml

    add_pod(emulator, "reviews-v1-abc")
    config = yaml.safe_load(Path(kubeconfig).read_text())
    config["users"][0]["user"]["client-key-data"] = "bm90IHJlYWxseSBhIGtleQ=="
    inline = tmp_path / "inline"
    inline.write_text(yaml.safe_dump(config))
    handed_over: list[str] = []
    monkeypatch.setattr(quick, "_official", lambda *args: handed_over.append(args[3]) or ["from-official"])
    assert quick.names(str(inline), None, None, "pods") == ["from-official"] and handed_over == ["pods"]
    assert quick.names(kubeconfig, None, None, "pods") == ["reviews-v1-abc"]
