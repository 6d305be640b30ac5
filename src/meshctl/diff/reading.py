"""Both sides of a diff read as one: every distinct file content parsed once, and in a file
that changed, every document whose text the other side already held parsed not at all.

A pull request leaves most files untouched, and most documents of a file it touches: a mesh
kept in one file differs between the sides in one document of thousands, and reading it twice
would cost more than comparing it. Documents of a YAML stream are independent (anchors, tags
and directives belong to one), and a line that starts with `---` and a blank starts one
wherever it is, in any file that parses: so a file that reads cleanly, without problems or
notes, is indexed by the text between such lines, and a later file is assembled from the
resources of the texts it shares, their lines moved to where it holds them, and only its other
texts are parsed. Anything that could make a text read differently alone falls back to reading
the file whole: directives, `...` ends, line breaks other than `\n` and `\r\n`, a new text that
reads with problems or notes (its messages then come from the whole file, as ever), or more
new texts than a changed file usually has.
"""

from __future__ import annotations

import dataclasses
import re

from meshctl.config.documents import decode
from meshctl.config.loader import FileResult, load_data
from meshctl.config.resource import Origin, Resource

__all__ = ["SharedReader"]

_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|\Z)", re.MULTILINE)
_WHOLE_ONLY = re.compile(r"^(?:%|\.\.\.(?:[ \t\r\n]|\Z))|[\x85\u2028\u2029]|\r(?!\n)", re.MULTILINE)
_MANY_TEXTS = 16
"""Texts a file holds at least for its texts to be looked up among those read before; a
smaller file is read whole."""
_FEW_NEW = 8
"""Texts of a file parsed one by one at most, beyond a tenth of its texts (each alone, after
as many empty lines as come before it, for its lines to count from the top of the file); a
file none of whose texts were read before is read whole."""


class SharedReader:
    """Files read into resources, each content and each document text once (module docstring)."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self._files: dict[str, FileResult] = {}
        self._texts: dict[str, tuple[int, tuple[Resource, ...]]] = {}
        """A document's text → the line it starts on and its resources, from a clean file."""
        self._unindexed: list[tuple[FileResult, str]] = []
        """Clean files whose texts are not in `_texts` yet: indexed when a file of many texts
        comes that is not known whole (a mesh in a few files), never when none does (a file per
        service, where a changed file costs less to parse than to look up)."""

    def read(self, data: bytes, name: str, digest: str) -> FileResult:
        """The file's resources and problems, as `load_data` gives them; `digest` identifies
        its content."""
        known = self._files.get(digest)
        if known is None:
            known = self._files[digest] = self._load(data, name)
        return known if known.file == name else _renamed(known, name)

    def _load(self, data: bytes, name: str) -> FileResult:
        text, _error = decode(data, name)
        result = None
        if text is not None and text.count("\n---") >= _MANY_TEXTS - 1:  # a cheap first look
            parts = _texts(text)
            if parts is not None and len(parts) >= _MANY_TEXTS:
                self._index()
                result = self._assembled(name, parts)
        if result is None:
            result = load_data(data, name, self._namespace)
        if text is not None and _clean(result):
            self._unindexed.append((result, text))
        return result

    def _index(self) -> None:
        for result, text in self._unindexed:
            parts = _texts(text)
            if parts is not None:
                self._remember(result, parts)
        self._unindexed.clear()

    def _assembled(self, name: str, parts: list[tuple[int, str]]) -> FileResult | None:
        """The file from the resources of the texts already read and the others parsed, or None
        when it must be read whole."""
        new = [(line, text) for line, text in parts if text not in self._texts]
        if len(new) == len(parts) or len(new) > max(_FEW_NEW, len(parts) // 10):
            return None
        fresh: dict[int, FileResult] = {}
        for line, text in new:
            result = load_data(("\n" * (line - 1) + text).encode(), name, self._namespace)
            if not _clean(result):
                return None
            fresh[line] = result
        out = FileResult(name)
        for line, text in parts:
            found = fresh.get(line)
            if found is not None:
                out.resources.extend(found.resources)
                out.documents += found.documents
                continue
            start, resources = self._texts[text]
            out.resources.extend(_moved(resource, name, line - start) for resource in resources)
            out.documents += 1  # only texts holding a document are remembered
        return out

    def _remember(self, result: FileResult, parts: list[tuple[int, str]]) -> None:
        """Each text's resources (by the lines they start on), for a file read later."""
        resources = result.resources
        position = 0
        for index, (line, text) in enumerate(parts):
            end = parts[index + 1][0] if index + 1 < len(parts) else None
            first = position
            while position < len(resources) and (end is None or resources[position].origin.line < end):
                position += 1
            if position > first:
                self._texts.setdefault(text, (line, tuple(resources[first:position])))


def _texts(text: str) -> list[tuple[int, str]] | None:
    """The file's texts, each from a document start to the next, with the line it starts on; None
    when the file may hold something that reads differently in parts."""
    if _WHOLE_ONLY.search(text):
        return None
    starts = [0, *(match.start() for match in _DOCUMENT_START.finditer(text) if match.start())]
    parts = []
    line = 1
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        parts.append((line, text[start:end]))
        line += text.count("\n", start, end)
    return parts


def _clean(result: FileResult) -> bool:
    return not result.problems and not result.notes and not result.rejected


def _moved(resource: Resource, name: str, lines: int) -> Resource:
    """A resource read from another file, or from another place in the file, where it is now."""
    if not lines:
        if resource.origin.file == name:
            return resource
        return dataclasses.replace(resource, origin=Origin(name, resource.origin.line))
    return dataclasses.replace(resource, origin=Origin(name, resource.origin.line + lines),
                               lines={path: line + lines for path, line in resource.lines.items()})


def _renamed(result: FileResult, name: str) -> FileResult:
    """A file's result under another name (the same content at another path or revision)."""

    def moved(resource: Resource) -> Resource:
        return _moved(resource, name, 0)

    return dataclasses.replace(
        result,
        file=name,
        resources=[moved(r) for r in result.resources],
        problems=[dataclasses.replace(p, file=name) for p in result.problems],
        notes=[note.replace(result.file, name, 1) for note in result.notes],
        rejected=[dataclasses.replace(r, resource=moved(r.resource),
                                      problems=tuple(dataclasses.replace(p, file=name) for p in r.problems))
                  for r in result.rejected],
    )
