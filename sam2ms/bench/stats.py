"""Latency statistics from per-batch timings (seconds in, milliseconds out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 90, 99)


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Mean, p50/p90/p99 (linear interpolation between closest ranks, numpy's default), min, max."""
    if not len(seconds):
        raise ValueError("no timings")
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    out = {"mean": float(ms.mean())}
    out.update({f"p{p}": float(np.percentile(ms, p)) for p in PERCENTILES})
    out.update({"min": float(ms.min()), "max": float(ms.max()), "std": float(ms.std())})
    return out


def throughput(tiles: int, wall_seconds: float, tile: int) -> dict[str, float]:
    """Tiles and megapixels per second over a wall-clock interval."""
    rate = tiles / wall_seconds
    return {"tiles_per_s": rate, "megapixels_per_s": rate * tile * tile / 1e6}
