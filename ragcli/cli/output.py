"""The rich console that `eval` and `profile` print their tables with: no table is ever cut.

rich squeezes a table into the console's width, ellipsizing ("…") or cropping the cells that
do not fit, and assumes 80 columns (or $COLUMNS) when stdout is not a terminal. Here:

- in a pipe or a file, the width is unbounded: every column is as wide as its widest cell, the
  title and caption are lines of their own, no line is wrapped or cut (what `grep`, `less -S`
  and a log want);
- on a terminal, every column folds instead of ellipsizing, and a table whose narrowest layout
  (each cell's longest word, each number whole) is wider than the terminal is printed at that
  width: the terminal wraps the long lines, nothing is lost.

`--json` stays the format for scripts."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

UNBOUNDED = 1_000_000  # characters: "as wide as the content" for a pipe


class WholeConsole(Console):
    """A Console whose `print` never cuts a Table (see the module's docstring)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        tables = [o for o in objects if isinstance(o, Table)]
        for table in tables:
            for column in table.columns:
                column.overflow = "fold"
        if len(objects) == 1 and tables and not self.is_terminal:
            self.print_unwrapped(tables[0], **kwargs)
            return
        needed = max((self.narrowest(t) for t in tables), default=0)
        if needed <= self.width:
            super().print(*objects, **kwargs)
            return
        width = self.width  # print(width=) cannot widen a console: widen it for this print
        self.width = needed
        try:
            super().print(*objects, **kwargs)
        finally:
            self.width = width

    def print_unwrapped(self, table: Table, **kwargs: Any) -> None:
        """A pipe: the title and the caption on lines of their own, never wrapped to the
        table's width."""
        title, caption = table.title, table.caption
        table.title = table.caption = None
        try:
            if title is not None:
                super().print(title, style=table.title_style or "table.title", **kwargs)
            super().print(table, **kwargs)
            if caption is not None:
                super().print(caption, style=table.caption_style or "table.caption", **kwargs)
        finally:
            table.title, table.caption = title, caption

    def narrowest(self, table: Table) -> int:
        """The width of `table`'s narrowest layout that keeps every word and number whole."""
        options = self.options.update_width(UNBOUNDED)
        cells = Measurement.get(self, options, table).minimum
        words = [str(t).split() for t in (table.title, table.caption) if t is not None]
        return max([cells, *(len(w) for ws in words for w in ws)])


def report_console() -> Console:
    """The console for rendered reports on stdout."""
    probe = Console(highlight=False)
    if probe.is_terminal:
        return WholeConsole(highlight=False)
    return WholeConsole(highlight=False, width=UNBOUNDED)


__all__ = ["UNBOUNDED", "WholeConsole", "report_console"]
