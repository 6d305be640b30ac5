"""HTTP/1.1 load from one process: `python httpload.py HOST PORT HOSTHEADER SECONDS keepalive|close`.

GETs `/` back to back for SECONDS on one connection (keepalive) or a new connection per request
(close), then prints `{"requests": N, "errors": E, "latencies": [seconds, ...]}` (every 10th
request's latency). Standard library only, raw sockets: a Python HTTP client would be the
bottleneck long before Envoy. Used by benchmarks/capture.py inside a pod's network namespace.
"""

import json
import socket
import sys
import time


def _response(sock: socket.socket) -> bytes:
    """One response, read to the end of its body (Content-Length) or to EOF without one."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    while length is None or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    return body


def main() -> None:
    host, port, authority, seconds, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
    keepalive = mode == "keepalive"
    close = "" if keepalive else "Connection: close\r\n"
    payload = f"GET / HTTP/1.1\r\nHost: {authority}\r\n{close}\r\n".encode()
    requests = errors = 0
    latencies = []
    sock = None
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            if sock is None:
                sock = socket.create_connection((host, port), timeout=5)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(payload)
            _response(sock)
        except OSError:
            errors += 1
            if sock is not None:
                sock.close()
            sock = None
            continue
        if not keepalive:
            sock.close()
            sock = None
        requests += 1
        if requests % 10 == 0:
            latencies.append(time.perf_counter() - started)
    print(json.dumps({"requests": requests, "errors": errors, "latencies": latencies}))


if __name__ == "__main__":
    main()
