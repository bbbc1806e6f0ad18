"""Normalisation and model-input layout shared by training, export checks, calibration and the runtime.

numpy only (no torch), so the deployment runtime and the trainer preprocess a tile with the very
same code: ImageNet mean/std on RGB in [0, 1], channels first. Rasters become uint8 RGB windows
in :mod:`sam2ms.geo.rasters` (with :mod:`sam2ms.geo.radiometry`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def normalize(image: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 (or N x H x W x 3) -> float32 channels-first, ImageNet-normalised."""
    x: np.ndarray = image.astype(np.float32) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


# What an exported model takes as input (``sam2ms-export --input``; recorded in the sidecar):
#   "uint8":   N x T x T x 3 uint8 RGB, the decoded windows as they are; the graph normalises.
#   "float32": N x 3 x T x T float32, already ImageNet-normalised by the host (:func:`normalize`).
# Everything upstream of a model handles uint8 RGB windows and converts them here, at the one
# place where the model's input format is known.
INPUT_FORMATS = ("uint8", "float32")
#: The tensor names of every exported graph: ``image`` in (INPUT_FORMATS), ``logits`` out.
INPUT_NAME, OUTPUT_NAME = "image", "logits"
#: The output of a graph that ends in the sigmoid (``model.deepness.onnx``, for QGIS): probabilities,
#: not the logits the runtime reads, so the runtime refuses it by this name.
PROBABILITY_OUTPUT = "road_probability"


def model_input(windows: np.ndarray, input_format: str) -> np.ndarray:
    """uint8 RGB windows (``... x T x T x 3``) in the dtype and layout a model of ``input_format`` takes."""
    if input_format == "uint8":
        return np.ascontiguousarray(windows, dtype=np.uint8)
    if input_format == "float32":
        return normalize(windows)
    raise ValueError(f"input format {input_format!r}: use one of {', '.join(INPUT_FORMATS)}")


def input_shape(input_format: str, tile: int, batch: Any = "N") -> list[Any]:
    """The input tensor's shape for ``input_format``: NHWC for uint8, NCHW for float32 (``batch``
    an int, or a name for a dynamic axis).
    """
    return [batch, tile, tile, 3] if input_format == "uint8" else [batch, 3, tile, tile]


def graph_io(tile: int, input_format: str) -> dict[str, Any]:
    """The tensors every exported graph has, as its sidecar records them (``input_format``,
    ``inputs``, ``outputs``): also what an older sidecar, which did not list them, stands for.
    """
    meaning = (
        "RGB bytes as decoded; the graph normalises"
        if input_format == "uint8"
        else "RGB / 255, ImageNet-normalised by the caller"
    )
    return {
        "input_format": input_format,
        "inputs": [
            {"name": INPUT_NAME, "shape": input_shape(input_format, tile), "dtype": input_format, "meaning": meaning}
        ],
        "outputs": [
            {
                "name": OUTPUT_NAME,
                "shape": ["N", 1, tile, tile],
                "dtype": "float32",
                "meaning": "logits; apply sigmoid for road probability",
            }
        ],
    }


def input_bytes_per_tile(input_format: str, tile: int) -> int:
    """What one tile costs to move to the device: 3 bytes a pixel as uint8, 12 as float32."""
    return tile * tile * 3 * (1 if input_format == "uint8" else 4)


def input_format_of(dtype: str) -> str:
    """The input format of a graph whose input element type is ``dtype`` (numpy, ONNX Runtime's
    ``tensor(uint8)`` or a TensorRT ``DataType`` name).
    """
    name = str(dtype).lower().removeprefix("tensor(").removesuffix(")").rsplit(".", 1)[-1]
    if name == "uint8":
        return "uint8"
    if name in ("float", "float32"):
        return "float32"
    raise UsageError(
        f"model input of type {dtype}: sam2ms feeds uint8 RGB (N x T x T x 3) or normalised float32 "
        "(N x 3 x T x T); re-export with sam2ms-export"
    )


#: The largest tile sam2ms runs (a 16384² uint8 window is 768 MiB; exports use 256 to 1024).
MAX_TILE = 16384


def tile_of_shape(shape: list[int | str | None], input_format: str) -> int | None:
    """The fixed tile of an input shape in ``input_format``'s layout (None when not fixed)."""
    side = shape[1] if input_format == "uint8" else shape[-1]
    return side if isinstance(side, int) and side > 0 else None
