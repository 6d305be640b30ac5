"""The process behind serve_process.ReadyProbe: GET URL every INTERVAL seconds until stdin
closes, then print {"latencies": [...], "waits": [...], "times": [...], "failures": [...]} as
JSON (after a line `probing` once the first answer came); `times` are when each request began.

For each request it records the wall time to the answer and how much of it serve's event-loop
thread (PID) and this probe spent waiting for a CPU while ready to run (Linux schedstat): on a
shared machine the kernel may leave serve runnable but not running for a while, which no code
in serve can prevent. `waits` is the larger of the two (they may overlap, so this subtracts the
least that can be blamed on the machine).
"""

from __future__ import annotations

import json
import sys
import threading
import time

from meshctl.loopback import http_get


def _waiting(path: str) -> float:
    """Seconds the thread of /proc `path` has spent waiting on a run queue."""
    try:
        with open(path) as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def main() -> None:
    url, interval, pid = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    serve_stat, own_stat = f"/proc/{pid}/task/{pid}/schedstat", "/proc/thread-self/schedstat"
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    latencies: list[float] = []
    waits: list[float] = []
    times: list[float] = []
    failures: list[str] = []
    first = True
    while not stop.is_set():
        serve_before, own_before = _waiting(serve_stat), _waiting(own_stat)
        times.append(time.time())
        started = time.perf_counter()
        status, body = http_get(url, timeout=1.0)
        latencies.append(time.perf_counter() - started)
        waits.append(max(_waiting(serve_stat) - serve_before, _waiting(own_stat) - own_before))
        if status != 200:
            failures.append(f"{status} {body.strip()}")
        if first:
            print("probing", flush=True)  # the caller starts its faults once it reads this
            first = False
        stop.wait(interval)
    json.dump({"latencies": latencies, "waits": waits, "times": times, "failures": failures}, sys.stdout)


if __name__ == "__main__":
    main()
