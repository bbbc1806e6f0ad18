"""Ordered work on shared threads: what lets blending and writing leave the scheduler thread and
still give the same bytes.

A scene's windows must be blended in the order the scheduler collects them (float sums depend on
the order) and its rows written top to bottom; scenes are independent of each other. A
:class:`Strand` runs its tasks one at a time in submission order on a :class:`StrandPool`'s
threads, so one scene's work is serial while different scenes' work runs in parallel; numpy, zlib,
Pillow and GDAL release the GIL for the heavy part of each task. :class:`Budget` bounds the work
waiting in a stage, which is what makes back-pressure reach the scheduler.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class StrandPool:
    """Threads shared by strands; the first exception a task raises is kept for the owner to re-raise
    (:meth:`check`), and later tasks of every strand are dropped once one has failed.
    """

    def __init__(self, threads: int, name: str) -> None:
        """``threads`` worker threads named ``name``_N (their names show in the busy fractions)."""
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        self._pending = 0  # tasks submitted to any strand and not yet run (or dropped)
        self._idle = threading.Condition()

    def strand(self) -> Strand:
        """A new ordered queue of tasks on this pool's threads (one per scene and stage)."""
        return Strand(self)

    def check(self) -> None:
        """Re-raise, in the calling thread, the first exception a task raised."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Wait for every submitted task, also those that tasks submit to other strands of this
        pool (tasks not started are dropped once ``stopped`` is set), then stop the threads.
        """
        with self._idle:
            while self._pending:
                self._idle.wait()
        self._executor.shutdown(wait=True)

    def _count(self, n: int) -> None:
        with self._idle:
            self._pending += n
            if not self._pending:
                self._idle.notify_all()


class Strand:
    """Tasks that run in submission order, never two at once, on a pool's threads."""

    def __init__(self, pool: StrandPool) -> None:
        """An empty strand on ``pool`` (:meth:`StrandPool.strand` makes them)."""
        self._pool = pool
        self._tasks: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` after this strand's earlier tasks; returns at once."""
        self._pool._count(1)
        with self._lock:
            self._tasks.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        self._pool._executor.submit(self._run_one)

    def _run_one(self) -> None:
        """Run the oldest task, then hand the thread back (other strands get their turn) and
        reschedule while tasks remain.
        """
        with self._lock:
            fn, args = self._tasks.popleft()
        try:
            if not self._pool.stopped.is_set():
                fn(*args)
        except BaseException as exc:  # noqa: BLE001 - kept for the owner's thread, which re-raises it
            if self._pool.error is None:
                self._pool.error = exc
            self._pool.stopped.set()
        with self._lock:
            again = bool(self._tasks)
            self._scheduled = again
        if again:
            self._pool._executor.submit(self._run_one)
        self._pool._count(-1)


class Budget:
    """At most ``limit`` units (tiles, row blocks) waiting in a stage; :meth:`take` blocks until the
    stage has room (a single request larger than the limit waits for the stage to empty).
    """

    def __init__(self, limit: int) -> None:
        """A budget of ``limit`` units, none taken."""
        self.limit, self._used = limit, 0
        self._cond = threading.Condition()

    def take(self, n: int = 1, abandon: threading.Event | None = None) -> None:
        """Take ``n`` units, waiting for room; ``abandon`` set (the run is failing) stops the wait."""
        with self._cond:
            while self._used and self._used + n > self.limit:
                if abandon is not None and abandon.is_set():
                    break
                self._cond.wait(0.1)
            self._used += n

    def give(self, n: int = 1) -> None:
        """Return ``n`` units (the stage passed them on) and wake the waiters."""
        with self._cond:
            self._used -= n
            self._cond.notify_all()

    @property
    def used(self) -> int:
        """Units taken and not yet given back."""
        return self._used
