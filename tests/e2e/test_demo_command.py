"""`meshctl demo` end to end, as a user runs it: a subprocess, its exit code and its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testsupport import assert_demo_routed


def test_demo_checks_every_step_and_keeps_its_workdir(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "meshctl", "demo", "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert_demo_routed(out)
    # Piped output is plain: no table wider than the terminal gets wrapped mid-row.
    assert all("│" not in line for line in out.splitlines())
    assert "every step checked out" in result.stderr
    assert "configs and logs kept in" in result.stderr
    assert (workdir / "mesh" / "routing.yaml").read_text().count("weight: 50") == 2
