"""Tables that fit the terminal: rich wraps long text; columns that cannot fit are left out, and the table says so.

`--json` is the form for machines; the tables are for people at whatever width their terminal has.
"""
from __future__ import annotations

import re
import textwrap
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


def _flat(header: str) -> str:
    """A header on one line: a name stacked at its underscores joins up again, other lines join with a space."""
    return header.replace("_\n", "_").replace("\n", " ")


def _table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], keep: list[int], caption: str,
           width: int):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cells = {i: [str(r[i]) for r in rows] for i in keep}
    widths = {i: _min_width(columns[i], cells[i]) for i in keep}
    # Text columns share what is left, in equal steps, each up to its longest line: rich's own layout would
    # squeeze the number columns instead, and first-come would leave a long name wide and the notes in slivers.
    spare = width - sum(w + 3 for w in widths.values()) - 1
    want = {i: _max_width(columns[i], cells[i]) - widths[i] for i in keep if columns[i].wrap}
    want = {i: w for i, w in want.items() if w > 0}
    while spare > 0 and want:
        share = max(1, spare // len(want))
        for i in list(want):
            grow = min(share, want[i], spare)
            widths[i] += grow
            want[i] -= grow
            spare -= grow
            if not want[i]:
                del want[i]
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
    hidden = [_flat(columns[i].header) for i in range(len(columns)) if i not in keep]
    if hidden:
        what = "1 column" if len(hidden) == 1 else f"{len(hidden)} columns"
        caption = " ".join(x for x in (caption, f"{what} left out to fit {console.width} characters "
                                                f"({', '.join(hidden)}): widen the terminal or use --json.") if x)
    return _table(title, columns, rows, keep, caption, console.width)


def _hang(line: str, width: int) -> int:
    """Where a wrapped line's continuation starts: under its last column (a run of 2+ spaces) in the left half."""
    starts = [m.end() for m in re.finditer(r"\S {2,}(?=\S)", line) if m.end() <= width // 2]
    return starts[-1] if starts else len(line) - len(line.lstrip()) + 2


def wrap_lines(lines: Sequence[str], width: int) -> list[str]:
    """Text lines wrapped to `width` at spaces, each continuation indented under the column it belongs to."""
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * _hang(line, width)
        wrapped = textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
        # A word longer than the room beside the indent (a link) gets a line of its own from the left edge, whole.
        out += [x.lstrip() if len(x) > width and " " not in x.strip() else x for x in wrapped or [line]]
    return out


def print_lines(lines: Sequence[str]) -> None:
    """Print text lines wrapped to the terminal's width (rich's reading of it: COLUMNS, else 80 when piped)."""
    from rich.console import Console

    print("\n".join(wrap_lines(lines, Console().width)))
