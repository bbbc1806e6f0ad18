"""INT8 against FP32 on held-out tiles (never the calibration ones).

Without labels for the user's calibration folder, the FP32 model's own masks are the reference:
F1 and mIoU of the INT8 masks against them, the INT8-vs-FP32 mask IoU and the largest probability
difference. The F1 drop is then 1 - F1(INT8 vs FP32), a stricter figure than a drop measured
against ground truth (where both models' errors partly coincide).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2ms.accuracy import Verdict, judge_int8_agreement
from sam2ms.runtime.probabilities import onnxruntime_probabilities


def fp32_probabilities(fp32_onnx: str | Path, tiles: np.ndarray) -> np.ndarray:
    """The FP32 model's road probabilities (N x H x W): the reference every INT8 trial is judged by."""
    return onnxruntime_probabilities(fp32_onnx, tiles, batch=2)[:, 0]


def int8_accuracy(
    fp32_onnx: str | Path, int8_onnx: str | Path, tiles: np.ndarray, p32: np.ndarray | None = None
) -> Verdict:
    """The accuracy report for the sidecar, with its verdict (:func:`sam2ms.accuracy.judge_int8`). Pass ``p32``
    (:func:`fp32_probabilities` of the same tiles) to avoid re-running FP32 for every trial.
    """
    p32 = fp32_probabilities(fp32_onnx, tiles) if p32 is None else p32
    return judge_int8_agreement(p32, onnxruntime_probabilities(int8_onnx, tiles, batch=2)[:, 0])
