"""The application of the capture tests: GET a URL COUNT times on fresh connections and print
`[[status, body], ...]` as JSON (status 0: the connection failed).

It runs as a UID of its own inside the pod's network namespace, so its connections meet the
pod's iptables rules the way a real application's do. Standard library only.
"""

import http.client
import json
import sys
from urllib.parse import urlsplit


def main() -> None:
    url, count, headers = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    parts = urlsplit(url)
    results = []
    for _ in range(count):
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=5)
        try:
            connection.request("GET", parts.path or "/", headers=headers)
            response = connection.getresponse()
            results.append([response.status, response.read().decode()])
        except (OSError, http.client.HTTPException) as exc:
            results.append([0, f"{type(exc).__name__}: {exc}"])
        finally:
            connection.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
