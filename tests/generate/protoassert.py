"""Whole-message comparison for the constructor tables: `==` on protos, a readable diff when not."""

from __future__ import annotations

import difflib

import pytest
from google.protobuf import descriptor_pool, text_format
from google.protobuf.message import Message


def as_text(message: Message) -> str:
    """The message in text format, with `Any` fields expanded so their content shows in a diff."""
    return str(text_format.MessageToString(message, descriptor_pool=descriptor_pool.Default()))


def assert_proto_equal(actual: Message | None, expected: Message | None) -> None:
    if actual == expected:
        return
    if actual is None or expected is None:
        pytest.fail(f"expected {expected!r}, got {actual!r}")
    diff = difflib.unified_diff(as_text(expected).splitlines(), as_text(actual).splitlines(),
                                "expected", "actual", lineterm="")
    pytest.fail(f"{type(actual).__name__} differs:\n" + "\n".join(diff))
