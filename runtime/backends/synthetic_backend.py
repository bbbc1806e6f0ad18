"""A synthetic engine of known speed: what the host side of the pipeline can deliver, without a GPU.

Its lanes take a batch, spend ``engine_ms`` per tile and return realistic road logits that were
drawn once (:func:`sam2ms.data.synth.render_road_scene`), chosen by a cheap digest of each input
tile so a run's masks do not depend on lane timing. Of each batch's time a ``gil_fraction`` is
spent in a Python loop that holds the GIL (as PyTorch's launch-bound lanes do while they queue
thousands of small kernels); the rest sleeps with the GIL released (as TensorRT's lanes wait on
their CUDA stream). ``engine_ms = 0`` is a free engine: the pipeline's own capacity.

Used by ``sam2ms bench --pipeline``, benchmarks/pipeline_bench.py and the pipeline's tests
(ordering, back-pressure and memory without a model).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from sam2ms.preprocess import INPUT_FORMATS

from .base import Backend, ModelInfo

#: Distinct logit tiles drawn once per engine.
POOL = 4


def road_logits(tile: int, count: int = POOL, seed: int = 0) -> np.ndarray:
    """``count`` float32 1 x T x T logit maps of drawn road scenes: about +4 on roads, -4 elsewhere,
    with the per-pixel noise of a real model's output.
    """
    from sam2ms.data.synth import render_road_scene

    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(count):
        _, label = render_road_scene(tile, tile, rng, scale=tile / 256)
        noise = rng.normal(0.0, 1.5, (tile, tile))
        maps.append((np.where(label, 4.0, -4.0) + noise).astype(np.float32)[None])
    return np.stack(maps)


def _pick(tile: np.ndarray, count: int) -> int:
    """A logit map for this input tile: the same tile always gets the same map."""
    flat = tile.reshape(-1)
    return int(flat[:: max(1, flat.size // 997)].astype(np.int64).sum()) % count


class SyntheticLane:
    """One lane: ``engine_ms`` per tile, part of it holding the GIL."""

    last_split_ms: dict[str, float] | None = None

    def __init__(self, logits: np.ndarray, engine_ms: float, gil_fraction: float) -> None:
        """A lane returning rows of ``logits`` (the backend's drawn road logits)."""
        self._logits, self._engine_ms, self._gil_fraction = logits, engine_ms, gil_fraction

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Spend the batch's time (spinning for the GIL-holding part, sleeping for the rest) and
        return logits picked by each tile's digest (the same tile always gets the same logits).
        """
        seconds = self._engine_ms * len(batch) / 1000.0
        held_until = time.perf_counter() + seconds * self._gil_fraction
        while time.perf_counter() < held_until:  # Python bytecode: holds the GIL between switches
            pass
        if seconds * (1.0 - self._gil_fraction) > 0:
            time.sleep(seconds * (1.0 - self._gil_fraction))
        return self._logits[[_pick(t, len(self._logits)) for t in batch]]


class SyntheticBackend(Backend):
    """Lanes of a stand-in engine of known speed (see the module's docstring)."""

    name = "synthetic"

    def __init__(
        self, tile: int, engine_ms: float = 0.0, gil_fraction: float = 0.0, input_format: str = "uint8", seed: int = 0
    ) -> None:
        """An engine of ``engine_ms`` per tile per lane (0: free), holding the GIL for
        ``gil_fraction`` of it, taking ``input_format`` tiles of ``tile`` pixels.
        """
        if engine_ms < 0:
            raise ValueError(f"engine_ms {engine_ms}: must be >= 0")
        if not 0.0 <= gil_fraction <= 1.0:
            raise ValueError(f"gil_fraction {gil_fraction}: must be in [0, 1]")
        if input_format not in INPUT_FORMATS:
            raise ValueError(f"input_format {input_format!r}: use one of {INPUT_FORMATS}")
        self.engine_ms, self.gil_fraction = engine_ms, gil_fraction
        self.info = ModelInfo(f"synthetic:{engine_ms:g}ms", "synthetic", tile, "fp32", input_format=input_format)
        self._logits = road_logits(tile, seed=seed)
        self._lanes: list[SyntheticLane] = []
        self._lock = threading.Lock()

    def lanes(self, count: int) -> list[SyntheticLane]:  # type: ignore[override]
        """``count`` lanes, made once (:meth:`Backend.lanes`)."""
        with self._lock:
            while len(self._lanes) < count:
                self._lanes.append(SyntheticLane(self._logits, self.engine_ms, self.gil_fraction))
            return self._lanes[:count]

    def device_name(self) -> str:
        """What the engine stands in for, by its speed."""
        return f"synthetic engine, {self.engine_ms:g} ms/tile, GIL held {self.gil_fraction:.0%}"
