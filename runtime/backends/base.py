"""The small runner interface every backend implements (Polygraphy-style).

A backend loads one model and hands out *lanes*: independent executors that may run
concurrently, one per worker thread. For TensorRT a lane is an execution context with its own
CUDA stream, optimisation profile and buffers; for ONNX Runtime, lanes share one thread-safe
session; for PyTorch, one lane.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class Lane(Protocol):
    """Runs one batch: float32 N x 3 x T x T (normalised) -> float32 N x 1 x T x T logits."""

    def infer(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass
class ModelInfo:
    """What the runtime needs to know about a loaded model."""

    path: str
    kind: str  # "tensorrt-plan" | "onnx" | "checkpoint"
    tile: int
    precision: str
    min_batch: int = 1
    max_batch: int | None = None  # None: any
    max_lanes: int | None = None  # None: any
    sidecar: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """A loaded model. ``lanes(k)`` may be called once; ``close()`` frees everything."""

    name: str
    info: ModelInfo

    @abstractmethod
    def lanes(self, count: int) -> list[Lane]:
        """``count`` executors that may run concurrently from different threads."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device memory, streams and sessions."""

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.info.path, "kind": self.info.kind, "tile": self.info.tile,
                "precision": self.info.precision}


def pad_batch(batch: np.ndarray, min_batch: int) -> np.ndarray:
    """Zero-pad a batch up to an engine's minimum batch size (results beyond ``len(batch)`` are dropped)."""
    if len(batch) >= min_batch:
        return batch
    pad = np.zeros((min_batch - len(batch), *batch.shape[1:]), batch.dtype)
    return np.concatenate([batch, pad])
