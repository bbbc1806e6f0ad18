"""The PyTorch side of the export's parity check: the reference probabilities.

Every export (unless ``--no-check``) runs ONNX Runtime (CPU) against PyTorch eager FP32 on the same
uint8 RGB tiles (:func:`sam2ms.accuracy.parity_tiles`) — normalised by numpy for PyTorch, converted
to whatever the graph takes for ONNX Runtime — and judges the probabilities with
:func:`sam2ms.accuracy.judge_parity`; the ONNX Runtime and OpenVINO runs are
:mod:`sam2ms.runtime.probabilities` (the calibration uses them too).
"""

from __future__ import annotations

import numpy as np

from sam2ms.metrics import sigmoid
from sam2ms.preprocess import normalize


def torch_probabilities(model: object, tiles: np.ndarray, batch: int = 1) -> np.ndarray:
    """PyTorch eager FP32 probabilities (the reference) of uint8 RGB windows, normalised by numpy."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(tiles), batch):
            out.append(model(torch.from_numpy(normalize(tiles[i : i + batch]))).numpy())  # type: ignore[operator]
    return sigmoid(np.concatenate(out))
