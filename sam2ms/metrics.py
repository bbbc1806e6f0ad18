"""Road-extraction metrics as the SAM2MS paper reports them. numpy only.

Shared by the trainer, the export checks and the torch-free runtime, so that every
stage of the chain judges masks the same way.

Definitions (threshold 0.5 on probabilities; labels are binary, road = 1):

* **Precision, Recall, F1** from TP/FP/FN summed over the whole dataset.
* **mIoU** and **mDice**: the road-class IoU and Dice of each image, averaged over images
  (an image with no road in either label or prediction counts as 1, a perfect answer).
* **MAE**: mean absolute difference between probability map and label, averaged over images
  (tables multiply it by 100).
* **RLOD**: mean over images of TP / road pixels in the label (images without road pixels in
  their label are left out of that mean).

Per-image averages are why the paper's mIoU (64.24) is below the IoU implied by its F1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

THRESHOLD = 0.5


@dataclass
class RoadMetrics:
    """Accumulates the paper's metrics over images; call :meth:`update` per image."""

    threshold: float = THRESHOLD
    tp: int = 0
    fp: int = 0
    fn: int = 0
    images: int = 0
    _iou: list[float] = field(default_factory=list)
    _dice: list[float] = field(default_factory=list)
    _mae: list[float] = field(default_factory=list)
    _rlod: list[float] = field(default_factory=list)

    def update(self, prob: np.ndarray, label: np.ndarray) -> None:
        """Add one image: ``prob`` in [0, 1] and ``label`` in {0, 1} (or bool), same shape."""
        prob = np.asarray(prob, dtype=np.float64)
        label = np.asarray(label)
        if prob.shape != label.shape:
            raise ValueError(f"prediction shape {prob.shape} differs from label shape {label.shape}")
        gt = label > 0.5
        pred = prob >= self.threshold
        tp = int(np.count_nonzero(pred & gt))
        fp = int(np.count_nonzero(pred & ~gt))
        fn = int(np.count_nonzero(~pred & gt))
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.images += 1
        union = tp + fp + fn
        self._iou.append(tp / union if union else 1.0)
        self._dice.append(2 * tp / (2 * tp + fp + fn) if union else 1.0)
        self._mae.append(float(np.mean(np.abs(prob - gt))))
        if tp + fn:
            self._rlod.append(tp / (tp + fn))

    def update_batch(self, probs: np.ndarray, labels: np.ndarray) -> None:
        """Add a batch of images (first axis = images)."""
        for prob, label in zip(probs, labels):
            self.update(prob, label)

    def merge(self, other: RoadMetrics) -> None:
        """Fold in the images another accumulator saw (e.g. another DDP rank's)."""
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.images += other.images
        self._iou += other._iou
        self._dice += other._dice
        self._mae += other._mae
        self._rlod += other._rlod

    def compute(self) -> dict[str, float]:
        """The metric table: fractions in [0, 1] (multiply by 100 for the paper's tables)."""
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "miou": _mean(self._iou),
            "mdice": _mean(self._dice),
            "mae": _mean(self._mae),
            "rlod": _mean(self._rlod),
            "images": self.images,
        }

    def state(self) -> dict[str, Any]:
        """Plain-data state (for gathering across processes)."""
        return asdict(self)


def sigmoid(logits: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Road probability from logits, computed and returned in ``dtype`` (float32 on the runtime's
    hot path, float64 where parity figures are measured).
    """
    x: np.ndarray = np.asarray(logits, dtype=dtype)
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=dtype)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two binary masks (1.0 when both are empty): the parity measure between two models."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def probability_parity(reference: np.ndarray, candidate: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float]:
    """How closely ``candidate`` probabilities follow ``reference`` (same shape): max and mean
    absolute difference, and the IoU of the two masks at ``threshold``. Used by every export and
    runtime check against the PyTorch reference.
    """
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {candidate.shape}")
    diff = np.abs(reference - candidate)
    return {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "mask_iou": mask_iou(reference >= threshold, candidate >= threshold),
    }


def agreement(reference: np.ndarray, candidate: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float]:
    """:func:`probability_parity` plus F1 and mIoU of ``candidate``'s masks with ``reference``'s
    masks as ground truth — how INT8 is judged against FP32 and every benchmark row against
    PyTorch. When neither has a road pixel the two agree perfectly: F1 is 1, not 0.
    """
    acc = RoadMetrics()
    acc.update_batch(candidate, np.asarray(reference) >= threshold)
    m = acc.compute()
    f1 = 1.0 if acc.tp + acc.fp + acc.fn == 0 else m["f1"]
    return {**probability_parity(reference, candidate, threshold), "f1": f1, "miou": m["miou"]}
