"""What the agent reads of its container's environment, which injection fills: istio-agent puts
every ISTIO_META_* and PROXY_CONFIG in its node, and so does meshctl's, in the bootstrap it
writes before Envoy's exec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from meshctl.security.ca import self_signed_bundle


def test_the_agent_sends_what_injection_put_in_its_environment(tmp_path: Path) -> None:
    """A pod's ISTIO_META_* and PROXY_CONFIG (injected from the mesh's proxyMetadata and the pod's
    proxy.istio.io/config) reach the node of the bootstrap the agent writes, as istio-agent
    sends them: serve reads the pod's idle timeout and proxyHeaders from there. Carrying them costs
Envoy's start nothing: the headers are not checked (the schema's 110 ms) before its fork."""
    root = tmp_path / "root-cert.pem"
    root.write_bytes(self_signed_bundle("cluster.local").roots_pem)
    script = f"""
import json, sys
from meshctl.agent import envoy

def forked(settings, workdir, prepare=None):
    print("meshctl.config.kinds" in sys.modules)
    prepare()
    node = json.loads((workdir / envoy.BOOTSTRAP_FILE).read_text())["node"]["metadata"]
    print(json.dumps([node.get("IDLE_TIMEOUT"), node.get("PROXY_CONFIG")]))
    raise SystemExit(0)

envoy.EnvoyProcess.start = forked
from meshctl.cli import main
main(["agent", "web-0", "--service-account", "web", "--ca-root-cert", {str(root)!r}, "--token", "t",
      "--workdir", {str(tmp_path / "work")!r}, "--sds-socket", {str(tmp_path / "socket")!r}, "--envoy", "/bin/true"])
"""
    environment = {**os.environ, "ISTIO_META_IDLE_TIMEOUT": "7s",
                   "PROXY_CONFIG": '{"proxyHeaders":{"requestId":{"disabled":true}}}'}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
                          env=environment)
    assert done.returncode == 0, done.stderr
    schema_loaded, node = done.stdout.splitlines()
    assert json.loads(node) == ["7s", {"proxyHeaders": {"requestId": {"disabled": True}}}], done.stdout
    assert schema_loaded == "False", "the config schema (110 ms) loaded before Envoy's fork"

