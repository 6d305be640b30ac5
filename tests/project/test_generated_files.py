"""Generated files in the repository match what their generators write today."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from testsupport import ROOT


def _load(script: str):
    spec = importlib.util.spec_from_file_location(script, ROOT / "scripts" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compiled_protos_are_up_to_date(tmp_path: Path) -> None:
    written = _load("gen_protos").generate(tmp_path)
    assert written, "protos/ holds at least the CA service"
    for fresh in written:
        committed = ROOT / "src" / fresh.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run python scripts/gen_protos.py"
        assert committed.read_bytes() == fresh.read_bytes(), f"{committed} is stale: run python scripts/gen_protos.py"


def test_compiled_ca_service_speaks_istios_wire_names() -> None:
    from meshctl.wire import ca_pb2, ca_pb2_grpc

    service = ca_pb2.DESCRIPTOR.services_by_name["IstioCertificateService"]
    assert service.full_name == "istio.v1.auth.IstioCertificateService"
    fields = {f.name: f.number for f in ca_pb2.IstioCertificateRequest.DESCRIPTOR.fields}
    assert fields == {"csr": 1, "validity_duration": 3, "metadata": 4}
    assert hasattr(ca_pb2_grpc, "IstioCertificateServiceStub")


def test_completion_scripts_are_up_to_date(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_completions.py"), str(tmp_path)],
                          capture_output=True, text=True, check=True)
    written = [Path(line) for line in done.stdout.split()]
    assert {p.name for p in written} == {"meshctl.bash", "_meshctl", "meshctl.fish"}
    for fresh in written:
        committed = ROOT / "completions" / fresh.name
        assert committed.read_text() == fresh.read_text(), f"{committed} is stale: run python scripts/gen_completions.py"


def test_completion_really_completes_commands() -> None:
    import os

    env = dict(os.environ, COMP_WORDS="meshctl tra", COMP_CWORD="1", _MESHCTL_COMPLETE="complete_bash")
    done = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'meshctl'; from meshctl.cli import main; main()"],
                          env=env, capture_output=True, text=True)
    assert done.stdout.split() == ["translate"]
