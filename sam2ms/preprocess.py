"""Image reading and normalisation shared by training, export checks, calibration and the runtime.

numpy + Pillow only (no torch), so the deployment runtime and the trainer preprocess a tile
with the very same code: ImageNet mean/std on RGB in [0, 1], channels first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

# Aerial scenes are large by nature: a 20 000 x 20 000 GeoTIFF is not a decompression bomb.
Image.MAX_IMAGE_PIXELS = None


def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read as an image ({exc}); replace or remove the file") from None


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an RGB image as uint8 H x W x 3.

    RGBA is accepted only when fully opaque (a common PNG export); grey, CMYK or
    multi-band images are refused rather than silently converted, because a model trained
    on RGB gives meaningless roads on them.
    """
    path = Path(path)
    img = _open(path)
    if img.mode == "RGBA" and img.getextrema()[3] == (255, 255):  # type: ignore[misc]  # 4 bands here
        img = img.convert("RGB")
    if img.mode != "RGB":
        raise UsageError(
            f"{path}: image has mode {img.mode!r} ({len(img.getbands())} band(s)); "
            "sam2ms needs 8-bit RGB images — convert it to RGB first"
        )
    return np.asarray(img, dtype=np.uint8)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a road label as a boolean H x W mask (road = pixel value > 127 in any band)."""
    path = Path(path)
    img = _open(path)
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    if arr.dtype == bool:
        return arr
    return arr > 127


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


def model_input(windows: np.ndarray, input_format: str) -> np.ndarray:
    """uint8 RGB windows (``... x T x T x 3``) in the dtype and layout a model of ``input_format`` takes."""
    if input_format == "uint8":
        return np.ascontiguousarray(windows, dtype=np.uint8)
    if input_format == "float32":
        return normalize(windows)
    raise ValueError(f"input format {input_format!r}: use one of {', '.join(INPUT_FORMATS)}")


def input_shape(input_format: str, tile: int, batch: Any = "N") -> list[Any]:
    """The input tensor's shape for ``input_format``: NHWC for uint8, NCHW for float32 (``batch``
    an int, or a name for a dynamic axis)."""
    return [batch, tile, tile, 3] if input_format == "uint8" else [batch, 3, tile, tile]


def input_bytes_per_tile(input_format: str, tile: int) -> int:
    """What one tile costs to move to the device: 3 bytes a pixel as uint8, 12 as float32."""
    return tile * tile * 3 * (1 if input_format == "uint8" else 4)


def input_format_of(dtype: str) -> str:
    """The input format of a graph whose input element type is ``dtype`` (numpy, ONNX Runtime's
    ``tensor(uint8)`` or a TensorRT ``DataType`` name)."""
    name = str(dtype).lower().removeprefix("tensor(").removesuffix(")").rsplit(".", 1)[-1]
    if name == "uint8":
        return "uint8"
    if name in ("float", "float32"):
        return "float32"
    raise UsageError(f"model input of type {dtype}: sam2ms feeds uint8 RGB (N x T x T x 3) or normalised float32 "
                     "(N x 3 x T x T); re-export with sam2ms-export")


def tile_of_shape(shape: list, input_format: str) -> int | None:
    """The fixed tile of an input shape in ``input_format``'s layout (None when not fixed)."""
    side = shape[1] if input_format == "uint8" else shape[-1]
    return side if isinstance(side, int) and side > 0 else None
