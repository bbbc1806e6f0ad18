"""``model.deepness.onnx``: the FP32 model as the Deepness QGIS plugin (PUTvision/qgis-plugin-deepness)
loads it, with no setting typed by hand.

The plugin's contract, read from its ``processing/models/model_base.py`` and ``segmentor.py``: one
float32 N x C x H x W input of fixed H = W (its tile size comes from the input's shape), fed with
pixels scaled to 0-1 (``/ 255``) and then standardised by the ``standardization_mean`` /
``standardization_std`` metadata; one output per class in 0-1, where a single channel is read as a
sigmoid probability (``class_names`` {"0": "road"} becomes background / road). Its metadata
properties are JSON strings: ``model_type`` "Segmentor", ``class_names``, ``resolution`` (cm/px),
``tile_size`` (the key the plugin reads; its docs say ``tiles_size``), ``tiles_overlap`` (percent),
``seg_thresh`` and ``seg_small_segment``.

So the graph is the model's float32 export (the plugin's standardisation with ImageNet's mean and
std is exactly :func:`sam2ms.preprocess.normalize`) with the sigmoid inside, and the export checks
it the way the plugin runs it against ``model.onnx`` on the same tiles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from sam2ms.accuracy import Verdict
from sam2ms.preprocess import IMAGENET_MEAN, IMAGENET_STD, PROBABILITY_OUTPUT

from .onnx_export import OnnxExport, export_onnx

DEEPNESS_FILE = "model.deepness.onnx"
#: Ground sampling distance (cm/px) of the datasets a checkpoint may be trained on, by layout.
LAYOUT_RESOLUTION_CM = {"deepglobe": 50.0, "spacenet": 30.0, "massachusetts": 100.0}
#: Where the training data's is unknown (the authors' weights, a plain folder): DeepGlobe's, the
#: paper's main benchmark; ``--resolution`` says otherwise.
DEFAULT_RESOLUTION_CM = 50.0
#: What the plugin's own ONNX Runtime loads: its installer pins ``onnxruntime-gpu>=1.12.1,<=1.17.0``
#: (python_requirements/requirements.txt), and ONNX Runtime 1.17 refuses IR version 10 ("max
#: supported IR version: 9", met loading our opset-18 dynamo export in QGIS) while 1.12 reads
#: opset 17 at most. The TorchScript exporter at opset 17 writes IR 8: every version in that range
#: loads it. (``model.onnx`` keeps the dynamo graph: the runtime's ONNX Runtime is recent.)
DEEPNESS_OPSET, DEEPNESS_EXPORTER, DEEPNESS_MAX_IR = 17, "torchscript", 8
#: The largest |Δp| from ``model.onnx``'s sigmoid on the same tiles (the export's FP32 parity bound).
MAX_ABS_VS_MODEL_ONNX = 1e-4


class WithSigmoid(nn.Module):
    """The model with its sigmoid: road probability N x 1 x T x T, what the plugin reads."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(x))


def training_resolution(raw: dict[str, Any]) -> tuple[float | None, str]:
    """The training data's resolution in cm/px from a checkpoint's training arguments (its dataset
    layout), or None and why it is not known.
    """
    train_args = raw.get("train_args") if isinstance(raw, dict) else None
    layout = train_args.get("layout") if isinstance(train_args, dict) else None
    if layout in LAYOUT_RESOLUTION_CM:
        return LAYOUT_RESOLUTION_CM[str(layout)], f"its training data's ({layout})"
    if layout is None:
        return None, "the checkpoint records no training data"
    return None, f"its training data ({layout}) has no known resolution"


def deepness_metadata(tile: int, overlap: int, resolution_cm: float, threshold: float = 0.5) -> dict[str, str]:
    """The metadata properties the plugin reads, each a JSON string. ``seg_small_segment`` is 0
    (off): the plugin removes small areas by an opening of that many pixels, which erases roads a
    few pixels wide.
    """
    fields: dict[str, Any] = {
        "model_type": "Segmentor",
        "class_names": {"0": "road"},
        "resolution": resolution_cm,
        "tile_size": tile,
        "tiles_overlap": round(100 * overlap / tile),
        "seg_thresh": threshold,
        "seg_small_segment": 0,
        "standardization_mean": list(IMAGENET_MEAN),
        "standardization_std": list(IMAGENET_STD),
    }
    return {key: json.dumps(value) for key, value in fields.items()}


def export_deepness(model: nn.Module, path: Path, tile: int, metadata: dict[str, str]) -> OnnxExport:
    """``model`` with its sigmoid, float32 N x 3 x T x T in, probability out, ``metadata`` attached,
    in the opset and IR version the plugin's ONNX Runtime reads (:data:`DEEPNESS_OPSET`).
    """
    import onnx

    exported = export_onnx(
        WithSigmoid(model),
        path,
        tile,
        DEEPNESS_OPSET,
        DEEPNESS_EXPORTER,
        "float32",
        output_name=PROBABILITY_OUTPUT,
        metadata=metadata,
    )
    ir_version = onnx.load(str(path), load_external_data=False).ir_version
    if ir_version > DEEPNESS_MAX_IR:  # an exporter that changed its default: fail here, not in QGIS
        raise RuntimeError(
            f"{path.name}: IR version {ir_version}, but the plugin's ONNX Runtime reads {DEEPNESS_MAX_IR}"
        )
    return exported


def plugin_input(tiles: np.ndarray, metadata: dict[str, str]) -> np.ndarray:
    """What the plugin feeds the model for uint8 N x T x T x C tiles (RGB or RGBA): the first three
    channels, ``/ 255``, standardised by the metadata, NCHW, float32 — its preprocessing, step by step.
    """
    mean = np.array(json.loads(metadata["standardization_mean"]), np.float32)
    std = np.array(json.loads(metadata["standardization_std"]), np.float32)
    x = np.float32(tiles[..., :3] * 1.0 / 255.0)
    return np.transpose((x - mean) / std, (0, 3, 1, 2)).astype(np.float32)


def judge_against_model_onnx(deepness: np.ndarray, model_onnx: np.ndarray) -> Verdict:
    """The Deepness graph's probabilities against ``model.onnx``'s sigmoid on the same tiles."""
    max_abs = float(np.max(np.abs(deepness.astype(np.float64) - model_onnx)))
    failures = () if max_abs <= MAX_ABS_VS_MODEL_ONNX else (f"max |dp| {max_abs:.3g} > {MAX_ABS_VS_MODEL_ONNX:g}",)
    return Verdict(not failures, failures, {"max_abs": max_abs, "limit": MAX_ABS_VS_MODEL_ONNX, "tiles": len(deepness)})


def deepness_probabilities(path: Path, tiles: np.ndarray, metadata: dict[str, str], batch: int = 2) -> np.ndarray:
    """ONNX Runtime (CPU) running ``path`` the way the plugin does (:func:`plugin_input`): N x T x T."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = [
        session.run(None, {name: plugin_input(tiles[i : i + batch], metadata)})[0] for i in range(0, len(tiles), batch)
    ]
    return np.concatenate(out)[:, 0]
