"""`meshctl demo` end to end, as a user runs it: a subprocess, its exit code and its output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def test_demo_checks_every_step_and_keeps_its_workdir(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "meshctl", "demo", "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^end-user: jason\s+0\s+20\s+0\s+0\s+all v2$", out, re.MULTILINE), out
    assert re.search(r"^no header\s+20\s+0\s+0\s+0\s+all v1$", out, re.MULTILINE), out
    split = re.search(r"^no header\s+(\d+)\s+0\s+(\d+)\s+0\s+~50/50 v1/v3$", out, re.MULTILINE)
    assert split and int(split[1]) + int(split[2]) == 200, out
    took = re.search(r"the edit took effect (\d+) ms after the file changed", out)
    assert took and int(took[1]) <= 1000, out
    synced = [line for line in out.splitlines() if "SYNCED (" in line]
    assert sorted(line.split()[0] for line in synced) == [
        "details-v1.default", "productpage-v1.default", "ratings-v1.default"], out
    # The AuthorizationPolicy on details: ratings refused (RBAC), then admitted; productpage never refused.
    assert re.search(r"^only productpage\s+ratings-v1\s+0\s+20\s+all 403$", out, re.MULTILINE), out
    assert re.search(r"^only productpage\s+productpage-v1\s+20\s+0\s+all 200$", out, re.MULTILINE), out
    assert re.search(r"^productpage and ratings\s+ratings-v1\s+20\s+0\s+all 200$", out, re.MULTILINE), out
    assert all("NOT SENT" not in line and "STALE" not in line and "ERROR" not in line for line in synced)
    assert "✘" not in out
    # Piped output is plain: no table wider than the terminal gets wrapped mid-row.
    assert all("│" not in line for line in out.splitlines())
    assert "every step checked out" in result.stderr
    assert "configs and logs kept in" in result.stderr
    assert (workdir / "mesh" / "routing.yaml").read_text().count("weight: 50") == 2
