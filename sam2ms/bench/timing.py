"""Timing one benchmark row: every lane runs its batches concurrently from its own thread, as
``sam2ms-infer --streams`` runs them, with host memory sampled meanwhile.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from .memory import PeakRss


def measure(lanes: list[Any], batch: np.ndarray, warmup: int, iterations: int) -> dict[str, Any]:
    """Time ``iterations`` batches on each lane concurrently (after ``warmup`` each)."""
    latencies: list[list[float]] = [[] for _ in lanes]
    splits: list[dict[str, float]] = []
    start = threading.Barrier(len(lanes) + 1)
    errors: list[BaseException] = []

    def work(i: int, lane: Any) -> None:
        try:
            for _ in range(max(warmup, 1)):  # at least once per shape: kernels compiled, buffers made
                lane.infer(batch)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller, in its thread
            errors.append(exc)
        start.wait()
        if errors:
            return
        for _ in range(iterations):
            t0 = time.perf_counter()
            lane.infer(batch)
            latencies[i].append(time.perf_counter() - t0)
            if lane.last_split_ms:
                splits.append(dict(lane.last_split_ms))

    threads = [threading.Thread(target=work, args=(i, lane)) for i, lane in enumerate(lanes)]
    with PeakRss() as rss:
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    flat = [x for lane in latencies for x in lane]
    split = {k: float(np.mean([s[k] for s in splits])) for k in splits[0]} if splits else None
    return {
        "latency": flat,
        "wall": wall,
        "tiles": len(flat) * len(batch),
        "split_ms": split,
        "host_rss_increase_mb": rss.increase_bytes / 2**20,
    }
