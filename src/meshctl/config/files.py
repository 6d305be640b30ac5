"""Which files an input names, and reading one of them without trusting it.

`meshctl translate -f DIR`, `validate -f DIR` and serve's watched directory all list config files
the same way: YAML and JSON files, recursively, skipping hidden entries. Hidden entries are
editor swap files and, in a mounted Kubernetes ConfigMap, the `..data` symlink and the
`..2024_01_01_00_00_00.1` directory it points to: the visible files are symlinks into them, so
reading both would define every object twice. Symlinked files are read through; symlinked
directories are not followed (as `kubectl apply -f DIR` does not), which also keeps loops out.

A directory that cannot be listed is reported, never silently skipped: serve must not mistake
an unreadable directory for deleted files. Reading refuses anything but a regular file (a FIFO
would block forever, `/dev/zero` never ends) and stops at `MAX_FILE_BYTES`.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Listing",
    "MAX_FILE_BYTES",
    "STDIN",
    "UnreadableFile",
    "YAML_SUFFIXES",
    "is_config_name",
    "read_bytes",
    "walk",
]

YAML_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "<stdin>"
MAX_FILE_BYTES = 32 * 1024 * 1024
"""The largest input file meshctl reads. Kubernetes stores no object over 1.5 MB; a file of 32 MB
holds thousands of them, and parsing it already takes seconds."""

# Paths through which a shell hands over an already open pipe (`-f <(helm template ...)`): these
# are read as streams. Any other FIFO is refused: opening it would wait for a writer forever.
_OPEN_PIPES = ("/dev/fd/", "/proc/self/fd/", "/dev/stdin")
_CHUNK = 1024 * 1024


class UnreadableFile(Exception):
    """A file that cannot be read as config; the message says why, in words for the user."""


@dataclass(frozen=True, slots=True)
class Listing:
    """The config files under a directory, and the subdirectories that could not be listed."""

    files: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...] = ()


def is_config_name(name: str) -> bool:
    """A visible YAML or JSON file name."""
    return not name.startswith(".") and name.endswith(YAML_SUFFIXES)


def walk(root: str | Path) -> Listing:
    """Config files under `root` (sorted), and `(directory, reason)` for each directory that
    could not be listed. Raises OSError when `root` itself cannot be listed."""
    files: list[str] = []
    unreadable: list[tuple[str, str]] = []
    pending = [str(root)]
    first = True
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                found = list(entries)
        except OSError as exc:
            if first:
                raise
            unreadable.append((directory, exc.strerror or str(exc)))
            continue
        first = False
        for entry in found:
            if entry.name.startswith("."):
                continue
            if _is_real_directory(entry):
                pending.append(entry.path)
            elif entry.name.endswith(YAML_SUFFIXES) and not _leads_to_directory(entry):
                files.append(entry.path)
    return Listing(tuple(sorted(files)), tuple(sorted(unreadable)))


def _is_real_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _leads_to_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink() and entry.is_dir()
    except OSError:
        return False


def read_bytes(file: str) -> bytes:
    """The content of one input file (or stdin), at most `MAX_FILE_BYTES`.

    Raises UnreadableFile for anything that is not a regular file or an open pipe, and for
    files that are too large or cannot be read.
    """
    if file == STDIN:
        return _bounded(sys.stdin.buffer.fileno(), file)
    try:
        _check_kind(file, os.stat(file).st_mode)
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        _check_kind(file, mode)  # it may have been replaced since the stat above
        if not stat.S_ISREG(mode):
            os.set_blocking(fd, True)
        return _bounded(fd, file)
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _check_kind(file: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISFIFO(mode) and file.startswith(_OPEN_PIPES):
        return
    if stat.S_ISDIR(mode):
        raise UnreadableFile("is a directory")
    if stat.S_ISFIFO(mode):
        raise UnreadableFile("is a named pipe (FIFO), not a file; to read from a pipe, use -f - and redirect it")
    kind = "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode) else \
        "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    raise UnreadableFile(f"is {kind}, not a file")


def _bounded(fd: int, file: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise UnreadableFile(f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, the most meshctl reads from one file")
        chunks.append(chunk)
