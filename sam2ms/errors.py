"""Errors that the CLI turns into one-line messages and exit codes (docs/architecture.md, CLI conventions)."""

from __future__ import annotations

from typing import Any


class Sam2msError(Exception):
    """Base class: a failure the user should read as one line, not a traceback."""

    exit_code = 1


class UsageError(Sam2msError):
    """Bad usage or bad input (a file, a flag, a shape): exit code 2.

    The message must name what was wrong and what to do about it.
    """

    exit_code = 2


class CheckFailed(Sam2msError):
    """A parity or accuracy check that failed: exit code 3.

    ``summary`` carries the figures, so that ``--json`` still prints them.
    """

    exit_code = 3

    def __init__(self, message: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.summary = summary


class WriteFailed(Sam2msError, OSError):
    """A file could not be written (a full disk, a read-only folder): exit 1, naming the file;
    still an OSError for callers that can live without the file (a cache).
    """


class Terminated(BaseException):
    """SIGTERM (a scheduler stopping the job, ``kill``), raised in the main thread. A BaseException
    like Ctrl-C's KeyboardInterrupt, so that the same clean-up runs (temporary files of unfinished
    outputs are removed, finished outputs stay, ``--resume`` continues) and no ``except Exception``
    swallows it; not a KeyboardInterrupt, which click turns into exit 130 before we see it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum
