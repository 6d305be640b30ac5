"""Go's `text/tabwriter`, as istioctl configures it, so our tables match istioctl byte for byte.

istioctl writes every short table through `tabwriter.Writer.Init(out, 0, 8, N, ' ', 0)`. The
output of that writer has rules no other table library reproduces, and users diff and grep it:

- A cell is text terminated by a tab (`\\t`, or the "soft" `\\v`). Text after the last tab of a
  line is a trailing cell: it is written as is and never widens or pads anything.
- A column is a *block* of consecutive lines that all have a terminated cell at that index,
  nested inside the block of the column to its left. Widths are computed per block, not per
  table: a line with fewer cells ends the blocks of the columns it lacks.
- Every terminated cell, empty or not, is padded with spaces to the block width, which is the
  widest cell (in runes, i.e. code points) plus the padding. So lines often end in spaces.
- A line with a single cell has no column, so it ends every block. A form feed (`\\f`, written
  out as a newline) flushes: the lines after it start new blocks even when they have cells.

This writer supports space padding with flags 0, the only configuration istioctl uses; the Go
`tabwidth` parameter only matters for tab padding, so it has no equivalent here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TabWriter", "tabulate"]

_CELL_ENDS = "\t\v\n\f"


@dataclass
class TabWriter:
    """Buffers text written with `write` and returns the aligned text from `flush`.

    Args:
        padding: spaces added to the widest cell of a block (istioctl uses 5, or 1 for
            listeners and the bootstrap summary).
        minwidth: the smallest block width, padding included (istioctl uses 0).
    """

    padding: int
    minwidth: int = 0
    _lines: list[list[str]] = field(default_factory=lambda: [[]], init=False, repr=False)
    _cell: list[str] = field(default_factory=list, init=False, repr=False)
    _out: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.padding < 0 or self.minwidth < 0:
            raise ValueError("padding and minwidth must not be negative")

    def write(self, text: str) -> None:
        """Add text; lines are formatted once a flush point (or `flush`) is reached."""
        start = 0
        for index, char in enumerate(text):
            if char not in _CELL_ENDS:
                continue
            self._cell.append(text[start:index])
            start = index + 1
            line = self._lines[-1]
            line.append("".join(self._cell))
            self._cell.clear()
            if char in "\n\f":
                self._lines.append([])
                if char == "\f":
                    self._format_buffered()
        self._cell.append(text[start:])

    def flush(self) -> str:
        """Format everything written so far and return all output since the last `flush`."""
        pending = "".join(self._cell)
        if pending:
            self._lines[-1].append(pending)
        self._cell.clear()
        self._format_buffered()
        out = "".join(self._out)
        self._out.clear()
        return out

    def _format_buffered(self) -> None:
        """Write out all complete lines plus the incomplete last one, then start afresh."""
        lines = self._lines
        self._format_columns(lines, 0, len(lines), [])
        self._lines = [[]]

    def _format_columns(self, lines: list[list[str]], first: int, end: int, widths: list[int]) -> None:
        """Lay out lines[first:end], whose columns left of len(widths) are already sized.

        Walks down the lines; each run of lines that has a terminated cell in the next column
        forms a block whose width is fixed here, and is then laid out recursively.
        """
        column = len(widths)
        row = first
        while row < end:
            if column >= len(lines[row]) - 1:
                row += 1
                continue
            self._write_lines(lines, first, row, widths)
            block_start = row
            width = self.minwidth
            while row < end and column < len(lines[row]) - 1:
                width = max(width, len(lines[row][column]) + self.padding)
                row += 1
            self._format_columns(lines, block_start, row, [*widths, width])
            first = row
        self._write_lines(lines, first, end, widths)

    def _write_lines(self, lines: list[list[str]], first: int, end: int, widths: list[int]) -> None:
        out = self._out
        for row in range(first, end):
            for index, text in enumerate(lines[row]):
                out.append(text)
                if index < len(widths):
                    out.append(" " * (widths[index] - len(text)))
            if row + 1 < len(lines):
                out.append("\n")


def tabulate(text: str, padding: int) -> str:
    """Align `text` the way istioctl's writer with this padding prints it after `Flush`."""
    writer = TabWriter(padding=padding)
    writer.write(text)
    return writer.flush()
