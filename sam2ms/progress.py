"""Progress bars (rich) for long work — training, evaluation, calibration; silent on non-main ranks
and when disabled. Part of the core so that calibration never imports the trainer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _Bar:
    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1, **fields: Any) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=n, **fields)


@contextmanager
def progress_bar(label: str, total: int, enabled: bool = True) -> Iterator[_Bar]:
    """A bar on stderr with count, elapsed and remaining time, and a free ``info`` field."""
    if not enabled:
        yield _Bar(None, None)
        return
    from rich.console import Console

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        yield _Bar(progress, progress.add_task(label, total=total, info=""))
