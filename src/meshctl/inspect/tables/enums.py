"""Enum values printed as Go prints them: the value's name, or its number when it has none.

Envoy can be newer than xds-protos; a value our protos do not name must not stop a table.
"""

from __future__ import annotations

from typing import Any

__all__ = ["enum_name", "enum_string"]


def enum_string(enum_type: Any, value: int) -> str:
    """Go's `Enum.String()`."""
    try:
        return enum_type.Name(value)
    except ValueError:
        return str(value)


def enum_name(enum_type: Any, value: int) -> str:
    """Go's `Enum_name[value]` map lookup: empty for a value without a name."""
    try:
        return enum_type.Name(value)
    except ValueError:
        return ""
