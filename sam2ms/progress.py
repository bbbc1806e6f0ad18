"""Progress bars (rich) for long work — training, evaluation, calibration; silent on non-main ranks
and when disabled. Part of the core so that calibration never imports the trainer.
"""

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


class Bar:
    """One line of a progress display (or nothing, when disabled)."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1, **fields: Any) -> None:
        """Advance the bar by ``n`` (and update its fields); nothing when the bar is off."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=n, **fields)

    def line(self, label: str, total: int) -> Bar:
        """A further line in the same display (rich shows one live display at a time), for a step
        inside this one's work.
        """
        if self._progress is None:
            return Bar()
        return Bar(self._progress, self._progress.add_task(label, total=total, info=""))


@contextmanager
def progress_bar(label: str, total: int, enabled: bool = True) -> Iterator[Bar]:
    """A bar on stderr with count, elapsed and remaining time, and a free ``info`` field."""
    if not enabled:
        yield Bar()
        return
    from rich.console import Console

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        yield Bar(progress, progress.add_task(label, total=total, info=""))
