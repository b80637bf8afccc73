"""What the operator commands print: boxed tables, JSON, styled lines and one-line errors.

Plain stdlib, so a command starts fast. Tables look like the ones the CLI always printed
(a heavy-headed box, cells wrapped to fit the terminal); colour and bold only on a terminal
(never when ``NO_COLOR`` is set), so what a script reads is plain text.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

__all__ = [
    "Cell",
    "Column",
    "CommandError",
    "Table",
    "ago",
    "fail",
    "print_json",
    "size",
    "styled",
    "width",
]

_CODES = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "cyan": "36"}


class CommandError(Exception):
    """Ends a command: ``error: MESSAGE`` on stderr and exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the command with a one-line error (1: the request failed, 2: bad usage)."""
    raise CommandError(message, code)


def _colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def styled(text: str, style: str, stream: TextIO | None = None) -> str:
    """``text`` in ``style`` ("bold", "red", "bold cyan", ...) when ``stream`` is a terminal."""
    stream = sys.stdout if stream is None else stream
    codes = [_CODES[word] for word in style.split() if word in _CODES]
    if not codes or not _colour(stream):
        return text
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def width() -> int:
    """The terminal's width (``$COLUMNS`` first, 80 when there is no terminal)."""
    return shutil.get_terminal_size().columns


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def ago(ts: float | None) -> str:
    """How long ago ``ts`` (a Unix time) was: ``12s ago``, ``3m ago``, ``never``."""
    if not ts:
        return "never"
    delta = max(0.0, time.time() - ts)
    if delta < 60:
        return f"{delta:.0f}s ago"
    if delta < 3600:
        return f"{delta / 60:.0f}m ago"
    if delta < 86400:
        return f"{delta / 3600:.1f}h ago"
    return f"{delta / 86400:.1f}d ago"


def size(n: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@dataclass(frozen=True)
class Cell:
    """A table cell with a style (shown on a terminal only)."""

    text: str
    style: str = ""


@dataclass
class Column:
    header: str
    justify: str = "left"  # or "right"
    no_wrap: bool = False
    min_width: int = 0


@dataclass
class Table:
    """A table printed in a box; cells wrap so the table fits the terminal's width."""

    columns: list[Column] = field(default_factory=list)
    title: str | None = None
    rows: list[list[Cell]] = field(default_factory=list)

    @classmethod
    def of(cls, *headers: str, title: str | None = None) -> Table:
        return cls([Column(h) for h in headers], title=title)

    def add_column(self, header: str, *, justify: str = "left", no_wrap: bool = False,
                   min_width: int = 0) -> None:
        self.columns.append(Column(header, justify, no_wrap, min_width))

    def add_row(self, *cells: str | Cell) -> None:
        self.rows.append([c if isinstance(c, Cell) else Cell(c) for c in cells])

    def _widths(self, room: int) -> list[int]:
        cells = [[c.text for c in row] for row in self.rows]
        widths = [max([len(col.header), col.min_width, *(max(map(len, row[i].split("\n")))
                                                          for row in cells)])
                  for i, col in enumerate(self.columns)]
        room -= 3 * len(widths) + 1  # borders and padding
        # Shrink the widest wrappable column first: to its longest word, then below it.
        for floor_of in (self._longest_word, lambda i: 3):
            while sum(widths) > room:
                can = [i for i, col in enumerate(self.columns)
                       if not col.no_wrap and widths[i] > floor_of(i)]
                if not can:
                    break
                widest = max(can, key=lambda i: widths[i])
                widths[widest] -= 1
        return widths

    def _longest_word(self, i: int) -> int:
        words = [w for row in self.rows for w in row[i].text.split()]
        return max([len(self.columns[i].header), *map(len, words)])

    def render(self, room: int | None = None, stream: TextIO | None = None) -> str:
        """The table as text, at most ``room`` columns wide (the terminal's by default)."""
        stream = sys.stdout if stream is None else stream
        widths = self._widths(width() if room is None else room)

        def line(left: str, fill: str, mid: str, right: str) -> str:
            return left + mid.join(fill * (w + 2) for w in widths) + right

        def cells(texts: Sequence[Cell], bar: str, header: bool = False) -> list[str]:
            wrapped = [_wrap(c.text, w) for c, w in zip(texts, widths, strict=True)]
            lines = []
            for n in range(max(map(len, wrapped), default=1)):
                parts = []
                for i, (cell, w) in enumerate(zip(texts, widths, strict=True)):
                    text = wrapped[i][n] if n < len(wrapped[i]) else ""
                    justify = self.columns[i].justify
                    padded = text.rjust(w) if justify == "right" else text.ljust(w)
                    style = "bold" if header else cell.style
                    parts.append(" " + (styled(padded, style, stream) if style and text
                                        else padded) + " ")
                lines.append(bar + bar.join(parts) + bar)
            return lines

        out = []
        total = sum(widths) + 3 * len(widths) + 1
        if self.title:
            out.append(styled(self.title.center(total).rstrip(), "italic", stream))
        out.append(line("┏", "━", "┳", "┓"))
        out += cells([Cell(c.header) for c in self.columns], "┃", header=True)
        out.append(line("┡", "━", "╇", "┩"))
        for row in self.rows:
            out += cells(row, "│")
        out.append(line("└", "─", "┴", "┘"))
        return "\n".join(out) + "\n"

    def print(self, stream: TextIO | None = None) -> None:
        stream = sys.stdout if stream is None else stream
        stream.write(self.render(stream=stream))
        stream.flush()


def _wrap(text: str, w: int) -> list[str]:
    lines: list[str] = []
    for part in text.split("\n"):
        lines += textwrap.wrap(part, w, break_on_hyphens=False, replace_whitespace=False,
                               drop_whitespace=True) or [""]
    return lines
