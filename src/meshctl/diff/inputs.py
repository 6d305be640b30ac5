"""The two sides of `meshctl diff`: directories, files, or a directory as a git revision holds it.

A side is a list of input files, each with its bytes and a name for messages: the path on
disk, or `REV:path` for a file read from git (`git ls-tree` lists it, `git cat-file --batch`
gives every blob in one process). Both sides are loaded together, and what one side holds is
parsed only once, a file's content or a document of a file that changed (`reading`).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshctl.config.documents import expand_inputs
from meshctl.config.files import UnreadableFile, is_config_name, read_bytes
from meshctl.config.loader import LoadResult, merge
from meshctl.diff.reading import SharedReader
from meshctl.errors import BadInputError, MeshctlError, UsageError

__all__ = ["InputFile", "Side", "git_range", "load_sides", "side"]


@dataclass(frozen=True, slots=True)
class InputFile:
    name: str
    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.blake2b(self.data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Side:
    """One side of the comparison: what the user called it, and its files in a stable order."""

    label: str
    files: tuple[InputFile, ...]


def side(spec: str) -> Side:
    """A directory (recursive), a file, or `REV:path` (that path in a git revision; relative to
    the current directory, as `git show REV:./path` reads it)."""
    path = Path(spec)
    if path.is_dir() or path.is_file():
        files, errors = expand_inputs([spec])  # what translate -f reads of it
        if errors:
            raise BadInputError([str(error) for error in errors])
        return Side(spec, tuple(_read(file) for file in files))
    revision, colon, inside = spec.partition(":")
    if colon and revision and not path.exists():
        return _git_side(revision, inside or ".")
    raise UsageError(f"{spec}: no such file or directory (a git revision is written REV:PATH)")


def git_range(spec: str, path: str) -> tuple[Side, Side]:
    """`--git REV1..REV2 PATH`: PATH in both revisions; `REV1..` compares with the working tree."""
    old, dots, new = spec.partition("..")
    if not dots or not old or new.startswith("."):
        raise UsageError(f"--git: {spec!r} is not a range REV1..REV2 (or REV1.. for the working tree)")
    return _git_side(old, path), (_git_side(new, path) if new else side(path))


def _read(file: str) -> InputFile:
    try:
        return InputFile(file, read_bytes(file))
    except UnreadableFile as exc:
        raise BadInputError([f"{file}: {exc}"]) from None


def _git(args: Sequence[str], *, stdin: bytes | None = None, cwd: str = ".") -> bytes:
    try:
        done = subprocess.run(["git", *args], input=stdin, capture_output=True, cwd=cwd, check=False)
    except FileNotFoundError:
        raise MeshctlError("git is not installed, and a git revision was asked for") from None
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args[:3])}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _git_side(revision: str, path: str) -> Side:
    """Every YAML/JSON file under `path` in `revision`, read in one `git cat-file --batch`."""
    listing = _git(["ls-tree", "-r", "-z", "--full-name", revision, "--", path])
    blobs: list[tuple[str, str]] = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        _mode, kind, sha = meta.decode().split()
        file_name = name.decode()
        if kind == "blob" and all(not part.startswith(".") for part in file_name.split("/")) \
                and is_config_name(file_name.rsplit("/", 1)[-1]):
            blobs.append((file_name, sha))
    if not blobs and not listing:
        raise UsageError(f"{revision}:{path}: no such path in that revision")
    blobs.sort()
    answer = _git(["cat-file", "--batch"], stdin="".join(f"{sha}\n" for _, sha in blobs).encode())
    files = []
    position = 0
    for file_name, _sha in blobs:
        header_end = answer.index(b"\n", position)
        size = int(answer[position:header_end].split()[2])
        start = header_end + 1
        files.append(InputFile(f"{revision}:{file_name}", answer[start:start + size]))
        position = start + size + 1
    return Side(f"{revision}:{path}", tuple(files))


def load_sides(old: Side, new: Side, namespace: str) -> tuple[LoadResult, LoadResult]:
    """Both sides as validated resources, every distinct file content, and every distinct
    document of a changed file, parsed once (`reading`); every problem of either side reported
    at once (BadInputError, file:line)."""
    reader = SharedReader(namespace)

    def load(files: Sequence[InputFile]) -> LoadResult:
        return merge([reader.read(item.data, item.name, item.digest) for item in files])

    old_result, new_result = load(old.files), load(new.files)
    problems = [str(p) for p in old_result.problems] + [str(p) for p in new_result.problems]
    if problems:
        raise BadInputError(list(dict.fromkeys(problems)))
    return old_result, new_result
