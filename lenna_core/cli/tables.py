"""The one table renderer of the commands: the terminal's width on a terminal, the whole table
in a pipe or a file."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

PIPE_WIDTH = 220
"""Characters a table may take when stdout is not a terminal (nothing squeezed into 80)."""


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *,
                title: str | None = None, right: Sequence[str] = ()) -> None:
    """Print ``rows`` under ``columns``; the ``right`` columns are right-aligned, long cells
    wrap. Cells may carry rich markup such as ``[green]ok[/]``."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left",
                         overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else PIPE_WIDTH).print(table)
