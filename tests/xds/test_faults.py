"""Fault injection in the spirit of Envoy's and go-control-plane's integration tests: ten real
sidecars with a request loop each, and a seeded sequence of operations on serve and its config
(valid edits, bad files, kill -9 and restart, hostile ADS and CSDS clients; see faults.py).

Through all of it no request fails (no operation writes a config that says they should), serve's
/ready answers within 100 ms whenever it runs, its log holds no traceback, and within a second of
the last operation every sidecar holds exactly what `meshctl translate` renders for it.

MESHCTL_FAULT_SEED and MESHCTL_FAULT_OPERATIONS replay another sequence (the journal of what was
done is written next to serve's log, and shown on failure).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from faults import OPERATION_BY_NAME, FaultMesh, differences, final_edit, in_sync, plan

SEED = int(os.environ.get("MESHCTL_FAULT_SEED", "1201"))
COUNT = int(os.environ.get("MESHCTL_FAULT_OPERATIONS", "200"))
CONVERGENCE = 1.0


def test_faults_drop_no_request_and_every_sidecar_converges_to_translate(tmp_path: Path, processes: Any) -> None:
    mesh = FaultMesh(tmp_path, processes, rng=random.Random(SEED))
    try:
        mesh.start()
    except BaseException:
        mesh.stop()
        raise
    journal = tmp_path / "journal.txt"
    took: float | None = None
    unconverged: dict[str, list[str]] = {}
    try:
        for number, (name, pause) in enumerate(plan(SEED, COUNT)):
            time.sleep(pause)
            mesh.journal.append(f"{number:3} {time.time():.3f} {OPERATION_BY_NAME[name](mesh)}")
        expected, version, done = final_edit(mesh)
        last = time.monotonic()
        mesh.journal.append(f"{COUNT - 1:3} {time.time():.3f} {done}")
        while took is None and time.monotonic() < last + 5 * CONVERGENCE:
            if in_sync(mesh, version):
                seen = time.monotonic()
                unconverged = {client.pod: found for envoy, client in zip(mesh.envoys, mesh.layout.clients, strict=True)
                               if (found := differences(expected[client.pod], envoy))}
                if not unconverged:
                    took = seen - last
                    mesh.journal.append(f"every sidecar holds translate's config {took:.3f} s after the last operation")
            time.sleep(0.01)
    finally:
        mesh.stop()
        journal.write_text("\n".join(mesh.journal) + "\n")
    context = f"seed {SEED}, journal in {journal}:\n" + "\n".join(mesh.journal[-15:])
    for loop in mesh.loops:
        assert loop.count > 100 and not loop.failures, (loop.client.pod, loop.failures[:5], context)
    assert took is not None and not unconverged, (unconverged, context)
    assert took <= CONVERGENCE, (f"every sidecar held translate's config {took:.3f} s after the last operation", context)
    for probe in mesh.probes:
        probe.check()
    log = (tmp_path / "serve.log").read_text()
    at = log.find("Traceback")
    assert at < 0, f"{context}\nserve's log around the traceback:\n{log[max(0, at - 2000):at + 4000]}"
    assert mesh.serve.process is not None and mesh.serve.process.poll() is None
