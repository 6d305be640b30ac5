"""Memo-key elements shared by the translator's cache and the server's shared views.

Both remember results by the very objects they were computed from (a list of clusters, a mapping
of packed resources): equal content is not enough where the point is to hand out the same
object again, and comparing content would cost what the memo saves.
"""

from __future__ import annotations

__all__ = ["Same"]


class Same:
    """A memo-key element equal only to the very same object. The key keeps the object alive,
    so its identity cannot be reused by another while the key exists."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj
