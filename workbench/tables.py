"""Tables that fit the terminal: rich wraps long text; columns that cannot fit are left out, and the table says so.

`--json` is the form for machines; the tables are for people at whatever width their terminal has.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    """A table column: header, alignment, whether its text may wrap, and how much it matters (0 = always shown)."""

    header: str
    justify: str = "right"
    wrap: bool = False  # text columns (names, notes) wrap at spaces; numbers are never wrapped or cut
    priority: int = 0  # columns with the highest number are left out first when the terminal is narrow


def _min_width(column: Column, cells: Sequence[str]) -> int:
    """The narrowest the column may get: its longest word where text wraps, else its longest cell or header word."""
    words = [w for text in cells for w in (text.split() if column.wrap else [text])]
    return max(len(w) for w in [*column.header.split(), *words])


def _max_width(column: Column, cells: Sequence[str]) -> int:
    return max(len(line) for text in [column.header, *cells] for line in text.split("\n"))


def _table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], keep: list[int], caption: str,
           width: int):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cells = {i: [str(r[i]) for r in rows] for i in keep}
    widths = {i: _min_width(columns[i], cells[i]) for i in keep}
    # Text columns get what is left, each up to its longest line, in order (the name first): rich's own
    # layout would squeeze the number columns instead.
    spare = width - sum(w + 3 for w in widths.values()) - 1
    for i in keep:
        if columns[i].wrap and spare > 0:
            grow = min(spare, _max_width(columns[i], cells[i]) - widths[i])
            widths[i] += grow
            spare -= grow
    table = Table(title=title, box=box.SIMPLE_HEAD, caption=caption or None, caption_justify="left")
    for i in keep:
        table.add_column(columns[i].header, justify=columns[i].justify, width=widths[i], overflow="fold")
    for r in rows:
        table.add_row(*(Text(str(r[i])) for i in keep))  # plain text: "[E]" must stay visible, not be markup
    return table


def fit_table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], console: Any,
              caption: str = ""):
    """A rich Table of `rows` that fits `console`'s width, leaving out low-priority columns if it must."""
    keep = list(range(len(columns)))

    def need() -> int:  # each column: one space of padding either side and one rule (a space in this box)
        return sum(_min_width(columns[i], [str(r[i]) for r in rows]) + 3 for i in keep) + 1

    while need() > console.width and any(columns[i].priority for i in keep):
        keep.remove(max(keep, key=lambda i: (columns[i].priority, i)))
    hidden = [columns[i].header for i in range(len(columns)) if i not in keep]
    if hidden:
        caption = " ".join(x for x in (caption, f"{len(hidden)} columns left out to fit {console.width} characters "
                                                f"({', '.join(hidden)}): widen the terminal or use --json.") if x)
    return _table(title, columns, rows, keep, caption, console.width)
