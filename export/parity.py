"""Parity of exported artifacts with the PyTorch model, on synthetic road tiles.

Every export runs this (unless ``--no-check``): ONNX Runtime (CPU) against PyTorch eager FP32 on
the same uint8 RGB tiles — normalised by numpy for PyTorch, converted to whatever the graph takes
for ONNX Runtime — comparing probabilities (sigmoid of the logits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2ms.data.synth import render_road_scene
from sam2ms.deps import require
from sam2ms.metrics import sigmoid
from sam2ms.preprocess import input_format_of, model_input, normalize


def parity_tiles(tile: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` synthetic road tiles as uint8 RGB windows: N x T x T x 3."""
    return np.stack([render_road_scene(tile, tile, np.random.default_rng([seed, 7919, i]))[0] for i in range(count)])


def torch_probabilities(model: object, tiles: np.ndarray, batch: int = 1) -> np.ndarray:
    """PyTorch eager FP32 probabilities (the reference) of uint8 RGB windows, normalised by numpy."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(tiles), batch):
            out.append(model(torch.from_numpy(normalize(tiles[i:i + batch]))).numpy())  # type: ignore[operator]
    return sigmoid(np.concatenate(out))


def onnxruntime_probabilities(onnx_path: str | Path, tiles: np.ndarray, batch: int = 1) -> np.ndarray:
    """ONNX Runtime CPU probabilities of uint8 RGB windows for an exported model of either input format."""
    ort = require("onnxruntime", "running an ONNX model")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    x = model_input(tiles, input_format_of(inp.type))
    out = [session.run(None, {inp.name: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
    return sigmoid(np.concatenate(out))
