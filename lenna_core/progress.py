"""Progress with ETA on stderr: a live bar on a terminal, one plain line per step otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(total: int, description: str) -> Iterator[Callable[[str], None]]:
    """Yield ``advance(status, total_change=0)``, which moves the progress one step, shows
    ``status`` and changes the total by ``total_change`` (work found or dropped on the way)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield _plain_lines(total, description)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
               TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=total, status="")

        def advance(status: str, total_change: int = 0) -> None:
            nonlocal total
            total += total_change
            progress.update(task, advance=1, status=status, total=total)

        yield advance


def _plain_lines(total: int, description: str) -> Callable[[str], None]:
    start = time.monotonic()
    done = 0

    def advance(status: str, total_change: int = 0) -> None:
        nonlocal done, total
        done += 1
        total += total_change
        elapsed = time.monotonic() - start
        eta = elapsed / done * max(0, total - done)
        print(f"{description} [{done}/{total}] {status}  elapsed {elapsed:.0f}s eta {eta:.0f}s",
              file=sys.stderr, flush=True)

    return advance
