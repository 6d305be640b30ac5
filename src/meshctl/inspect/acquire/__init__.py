"""Where a proxy's admin data comes from: a file, an Envoy admin URL, or a pod.

Every inspect command asks a `DumpSource` for an admin path (`config_dump?resource=...`,
`clusters?format=json`, `certs`, ...) and gets the response body. The tables and diffs never
know whether the bytes came from a file, a local Envoy or a port-forward through Kubernetes.
`location` turns what the user named into sources; `pod` reads a pod through `meshctl.kube`.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from meshctl.calllog import timed
from meshctl.errors import BadInputError, MeshctlError

__all__ = ["PROXY_ADMIN_PORT", "AdminSource", "DumpSource", "EnvoyAdminError", "FileSource", "LiveSource", "masked_dump"]

PROXY_ADMIN_PORT = 15000
"""Envoy's admin port in an Istio sidecar (on the pod's loopback)."""


class DumpSource(Protocol):
    """A proxy whose admin endpoint can be read (`get`) and, for `proxy-config log`, written."""

    @property
    def name(self) -> str:
        """How messages name this proxy: `POD.NS`, the admin URL, or the file name."""
        ...

    @property
    def live(self) -> bool:
        """True when Envoy answers each path itself, so a narrow query (`?resource=&mask=`)
        gets a narrow answer; a saved file answers every path with the same bytes."""
        ...

    def get(self, path: str) -> bytes:
        """The body of `GET /<path>` on the proxy's admin endpoint."""
        ...

    def post(self, path: str) -> bytes:
        """The body of `POST /<path>`; sources that cannot write raise MeshctlError."""
        ...


@dataclass(frozen=True, slots=True)
class FileSource:
    """A saved admin response (`-f FILE`, `-f -` for stdin): the same bytes for every path,
    read once (stdin can only be read once)."""

    file: str
    _read: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        return "<stdin>" if self.file == "-" else self.file

    @property
    def live(self) -> bool:
        return False

    def get(self, path: str) -> bytes:
        if self.file not in self._read:
            try:
                self._read[self.file] = sys.stdin.buffer.read() if self.file == "-" else Path(self.file).read_bytes()
            except OSError as exc:
                raise BadInputError([f"cannot read {self.file}: {exc.strerror or exc}"]) from None
        return self._read[self.file]

    def post(self, path: str) -> bytes:
        raise MeshctlError("a file cannot be changed; use --admin or a pod")


class EnvoyAdminError(MeshctlError):
    """Envoy's admin endpoint answered with an HTTP error; `status` and `body` say which."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def selects_nothing(self) -> bool:
        """Envoy's answer to a `config_dump?mask=` that matches no section it holds: for the
        reader, that section is empty (Envoy leaves out sections it has nothing for)."""
        return self.status == 400 and "could not be successfully applied to any configs" in self.body


class LiveSource:
    """A DumpSource that sends every request to Envoy itself: subclasses say how (`_request`)."""

    __slots__ = ()

    @property
    def live(self) -> bool:
        return True

    def get(self, path: str) -> bytes:
        return self._request("GET", path)

    def post(self, path: str) -> bytes:
        return self._request("POST", path)

    def _request(self, method: str, path: str) -> bytes:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class AdminSource(LiveSource):
    """An Envoy admin endpoint reachable over HTTP (`--admin http://127.0.0.1:15000`)."""

    url: str
    timeout: float = 30.0

    @property
    def name(self) -> str:
        return self.url

    def _request(self, method: str, path: str) -> bytes:
        base = self.url if "://" in self.url else f"http://{self.url}"
        url = f"{base.rstrip('/')}/{path.lstrip('/')}"
        request = urllib.request.Request(url, method=method)
        try:
            with timed(lambda: f"{method} {url}") as outcome, \
                    urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = bytes(response.read())
                outcome(f"HTTP {response.status}, {len(body)} bytes")
                return body
        except urllib.error.HTTPError as exc:
            said = exc.read().decode(errors="replace").strip()
            raise EnvoyAdminError(f"{url}: HTTP {exc.code}: {said or exc.reason}", exc.code, said) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MeshctlError(f"cannot reach Envoy admin at {base}: {reason}") from None


def masked_dump(source: DumpSource, path: str) -> bytes:
    """The admin answer to a `/config_dump?mask=` question; one whose mask selects no section
    Envoy holds reads as an empty dump (Envoy refuses it with a 400 instead)."""
    from meshctl.inspect.adminpaths import EMPTY_DUMP

    try:
        return source.get(path)
    except EnvoyAdminError as exc:
        if exc.selects_nothing:
            return EMPTY_DUMP
        raise
