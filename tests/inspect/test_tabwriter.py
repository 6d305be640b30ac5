"""The tabwriter clone against Go's text/tabwriter rules and against vectors Go produced."""

from __future__ import annotations

import json

import pytest
from inspect_support import data

from meshctl.inspect.tabwriter import TabWriter, tabulate


@pytest.mark.parametrize(
    ("text", "padding", "expected"),
    [
        # The example in Go's package documentation: b and c are in different column blocks
        # because the line "a\t" interrupts column 1; d and e are trailing text.
        ("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 1, "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n"),
        # Trailing text does not widen its column.
        ("a\tlong trailing text\nbb\tx\n", 2, "a   long trailing text\nbb  x\n"),
        # A terminated empty cell is padded like any other, so the line keeps trailing spaces.
        ("name\tvalue\t\nn\t\t\n", 1, "name value \nn          \n"),
        # Widths count runes, not bytes or display cells.
        ("日本\tx\nabc\ty\n", 1, "日本  x\nabc y\n"),
        # A line with a single cell ends every block.
        ("a\tb\nheader only\nccc\td\n", 1, "a b\nheader only\nccc d\n"),
        # A form feed flushes too, and is written as a newline.
        ("aaaa\tb\fc\td\n", 1, "aaaa b\nc d\n"),
        # Text after the last newline is written without one.
        ("a\tb", 1, "a b"),
        # A block nests inside the block of the column to its left.
        ("a\tb\tc\naa\tbb\n", 1, "a  b c\naa bb\n"),
        # Vertical tabs terminate cells too.
        ("a\vb\nccc\vd\n", 1, "a   b\nccc d\n"),
        ("", 5, ""),
    ],
)
def test_go_rules(text: str, padding: int, expected: str) -> None:
    assert tabulate(text, padding) == expected


def test_minwidth_includes_padding() -> None:
    writer = TabWriter(padding=1, minwidth=4)
    writer.write("a\tb\nab\tc\n")
    assert writer.flush() == "a   b\nab  c\n"
    writer.write("a\tb\nabcdef\tc\n")
    assert writer.flush() == "a      b\nabcdef c\n"


def test_writes_in_pieces_equal_one_write() -> None:
    writer = TabWriter(padding=5)
    for piece in ("NA", "ME\tST", "ATUS\n", "x\t", "HEALTHY\ny", "yy\tz\n"):
        writer.write(piece)
    assert writer.flush() == tabulate("NAME\tSTATUS\nx\tHEALTHY\nyyy\tz\n", 5)


def test_flush_starts_afresh() -> None:
    writer = TabWriter(padding=1)
    writer.write("long-cell\tx\n")
    assert writer.flush() == "long-cell x\n"
    writer.write("a\tb\n")
    assert writer.flush() == "a b\n"


def test_negative_padding_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        TabWriter(padding=-1)


def test_vectors_from_go() -> None:
    """160 random texts (tabs, newlines, form feeds, multi-byte runes, written in chunks) and
    what Go's text/tabwriter printed for them (see data/README.md)."""
    for vector in json.loads(data("go_vectors.json"))["tabwriter"]:
        writer = TabWriter(padding=vector["padding"])
        for chunk in vector["chunks"]:
            writer.write(chunk)
        assert writer.flush() == vector["want"], vector
