"""Peak host memory during a measurement: a sampler thread reading the resident set size.

``ru_maxrss``/VmHWM are process-lifetime peaks and cannot separate one benchmark row from the
next; sampling /proc/self/statm every few milliseconds can (a short spike may be missed).
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size now (0 where /proc is unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


class PeakRss:
    """``with PeakRss() as peak: ...`` then ``peak.increase_bytes`` above the level at entry."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self._interval, self._stop = interval_s, threading.Event()
        self.start_bytes = self.peak_bytes = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_bytes = max(self.peak_bytes, rss_bytes())

    def __enter__(self) -> PeakRss:
        self.start_bytes = self.peak_bytes = rss_bytes()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, rss_bytes())

    @property
    def increase_bytes(self) -> int:
        """How much the peak RSS rose above its value at the start."""
        return self.peak_bytes - self.start_bytes
